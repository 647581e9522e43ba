"""A PostgreSQL 18 client signing in with SASL OAUTHBEARER: psycopg 3 over the libpq 18 its
binary wheel bundles. libpq 18 gets the bearer token from an auth-data hook (psycopg does not
expose one, so it is set with ctypes on the same libpq); the wheel's libpq has no built-in
device flow. Usage: oauthbearer_client.py CONNINFO SQL, token in PORTCULLIS_TEST_TOKEN.
Prints the query's first value, or the connection error on stderr (exit 1). Also prints, on
stderr, which discovery URL libpq was given (`discovery: …`)."""
import ctypes
import glob
import os
import sys

import psycopg
import psycopg_binary

assert psycopg.pq.version() >= 180000, f"libpq {psycopg.pq.version()} has no OAUTHBEARER"
libs = glob.glob(os.path.join(os.path.dirname(psycopg_binary.__file__), "..",
                              "psycopg_binary.libs", "libpq-*.so*"))
pq = ctypes.CDLL(libs[0])


class Request(ctypes.Structure):
    """PGoauthBearerRequest (libpq 18, v1)."""
    _fields_ = [("openid_configuration", ctypes.c_char_p), ("scope", ctypes.c_char_p),
                ("async_", ctypes.c_void_p), ("cleanup", ctypes.c_void_p),
                ("token", ctypes.c_void_p), ("user", ctypes.c_void_p)]


HOOK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
pq.PQdefaultAuthDataHook.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
TOKEN = ctypes.create_string_buffer(os.environ["PORTCULLIS_TEST_TOKEN"].encode())
PQAUTHDATA_OAUTH_BEARER_TOKEN = 1


def hook(kind, conn, data):
    if kind == PQAUTHDATA_OAUTH_BEARER_TOKEN:
        request = ctypes.cast(data, ctypes.POINTER(Request)).contents
        seen = request.openid_configuration
        print(f"discovery: {seen.decode() if seen else None} scope: "
              f"{request.scope.decode() if request.scope else None}", file=sys.stderr)
        request.token = ctypes.cast(TOKEN, ctypes.c_void_p)
        return 1
    return pq.PQdefaultAuthDataHook(kind, conn, data)


KEEP = HOOK(hook)
pq.PQsetAuthDataHook(KEEP)
try:
    with psycopg.connect(sys.argv[1]) as conn:
        print(conn.execute(sys.argv[2]).fetchone()[0])
except psycopg.OperationalError as e:
    print(str(e).strip(), file=sys.stderr)
    sys.exit(1)
