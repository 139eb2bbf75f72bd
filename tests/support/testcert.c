/* testcert.c — self-signed certificates for the TLS tests; see testcert.h. */
#include "testcert.h"

#include <stdio.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* Adds extension nid with the configuration text value. 0 or -1. */
static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (!ext)
        return -1;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

static int write_pem(const char *path, X509 *x, EVP_PKEY *pk)
{
    FILE *fp = fopen(path, "w");
    if (!fp)
        return -1;
    int ok = x ? PEM_write_X509(fp, x) : PEM_write_PrivateKey(fp, pk, NULL, NULL, 0, NULL, NULL);
    return fclose(fp) == 0 && ok ? 0 : -1;
}

int testcert_write(const char *cert_path, const char *key_path, const char *cn, const char *san)
{
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    int rc = -1;
    if (!pk || !x)
        goto out;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pk);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, name);
    if (add_ext(x, NID_subject_alt_name, san) < 0 || add_ext(x, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
        X509_sign(x, pk, EVP_sha256()) <= 0)
        goto out;
    rc = write_pem(cert_path, x, NULL) == 0 && write_pem(key_path, NULL, pk) == 0 ? 0 : -1;
out:
    X509_free(x);
    EVP_PKEY_free(pk);
    return rc;
}
