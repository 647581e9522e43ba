"""Signs in N psycopg2 sessions (password, no TLS), runs SELECT 1 on each, prints HELD and
keeps them open for SECONDS: the load of the benchmarks' memory-per-idle-session figures.
Usage: python3 scripts/hold_sessions.py PORT USER DATABASE PASSWORD [N=1000] [SECONDS=5]"""
import sys
import time

import psycopg2

port, user, database, password = sys.argv[1:5]
n = int(sys.argv[5]) if len(sys.argv) > 5 else 1000
seconds = float(sys.argv[6]) if len(sys.argv) > 6 else 5
conns = []
for _ in range(n):
    c = psycopg2.connect(host="127.0.0.1", port=int(port), user=user, dbname=database,
                         password=password, sslmode="disable")
    c.cursor().execute("SELECT 1")
    c.commit()
    conns.append(c)
print("HELD", flush=True)
time.sleep(seconds)
