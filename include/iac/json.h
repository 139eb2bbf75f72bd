/* json.h — strict accessors over cJSON for decoding wire messages.
 *
 * cJSON parses; these helpers read one member with an exact type check and say what was wrong in the caller's
 * error buffer ("task_id: expected a whole number, got string"). Every decoder in the project goes through them so
 * that malformed input always yields an error and never a crash or a silently defaulted field. */
#ifndef IAC_JSON_H
#define IAC_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* Each getter: `required` false and member absent (or JSON null) → returns 1 and leaves *out as it is;
 * present with the right type → 0; wrong type, out of range, or required and absent → -1 with a message in err.
 * Strings are returned as pointers into the cJSON tree (valid while the tree lives). A NULL obj reads as an empty
 * object (so an optional sub-object can be passed on unchecked); an obj that is not an object is an error. Messages
 * name the key and the JSON type or number found, never a string's value. */
int json_get_string(const cJSON *obj, const char *key, bool required, const char **out, char *err, size_t errlen);
/* A JSON number that is a whole number in [0, 2^53]. */
int json_get_u64(const cJSON *obj, const char *key, bool required, uint64_t *out, char *err, size_t errlen);
/* A JSON number that is a whole number in [-2^53, 2^53]. */
int json_get_i64(const cJSON *obj, const char *key, bool required, int64_t *out, char *err, size_t errlen);
/* Any finite JSON number (a literal that overflows to infinity is out of range). */
int json_get_double(const cJSON *obj, const char *key, bool required, double *out, char *err, size_t errlen);
int json_get_bool(const cJSON *obj, const char *key, bool required, bool *out, char *err, size_t errlen);
/* Object or array members: *out points into the tree. */
int json_get_object(const cJSON *obj, const char *key, bool required, const cJSON **out, char *err, size_t errlen);
int json_get_array(const cJSON *obj, const char *key, bool required, const cJSON **out, char *err, size_t errlen);

/* Parses text of exactly len bytes (no NUL needed) into a tree whose root must be an object. NULL and a message on
 * failure: empty input, a raw NUL byte or a \u0000 escape (a C string cannot hold it), trailing bytes after the
 * value, nesting deeper than cJSON's limit (1000). The caller frees the tree with cJSON_Delete. */
cJSON *json_parse_object(const char *text, size_t len, char *err, size_t errlen);

#endif
