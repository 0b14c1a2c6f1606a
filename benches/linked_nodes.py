#!/usr/bin/env python3
# What records stored as linked GUN nodes (publishers before they stringified data and oip)
# cost against stringified ones: a depth-2 resolution of a workout, its 4 exercises and their
# 2 pieces of equipment, on the real GUN relay. Usage: python3 benches/linked_nodes.py [binary]
import json, subprocess, time, urllib.request, os, tempfile, sys
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/release/oip-resolver")
def req(url, data=None):
    r = urllib.request.Request(url, data=json.dumps(data).encode() if data is not None else None,
                               headers={"content-type": "application/json"})
    with urllib.request.urlopen(r) as f: return json.loads(f.read())
store = tempfile.mkdtemp()
relay = subprocess.Popen(["node", os.path.join(ROOT, "tests/relay/relay.js"), store], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, env=dict(os.environ, MISS_WAIT_MS="300"))
url = relay.stdout.readline().decode().split()[-1]
P = "a1b2c3d4e5f6"
def graph(tag, linked):
    souls = {}
    eq = [f"{P}:{tag}-eq-{i}" for i in range(2)]
    ex = [f"{P}:{tag}-ex-{i}" for i in range(4)]
    wo = f"{P}:{tag}-workout"
    def rec(soul, data, rtype):
        oip = {"did": f"did:gun:{soul}", "recordType": rtype, "ver": "0.8.0",
               "creator": {"didAddress": "did:arweave:x", "publicKey": "k"}}
        if linked:
            return {"data": data, "oip": oip, "meta": {"created": 1}}
        return {"data": json.dumps(data), "oip": json.dumps(oip), "meta": {"created": 1}}
    for i, s in enumerate(eq):
        souls[s] = rec(s, {"basic": {"name": f"eq {i}", "date": 1736035200}, "equipment": {"kind": "bar"}}, "equipment")
    for i, s in enumerate(ex):
        eqs = json.dumps([f"did:gun:{e}" for e in eq])
        souls[s] = rec(s, {"basic": {"name": f"ex {i}"}, "exercise": {"equipmentRequired": eqs, "reps": 5}}, "exercise")
    souls[wo] = rec(wo, {"basic": {"name": "w"}, "workout": {"exercise": json.dumps([f"did:gun:{e}" for e in ex])}}, "workout")
    return wo, souls
results = {}
for tag, linked in [("str", False), ("lnk", True)]:
    wo, souls = graph(tag, linked)
    for s, node in souls.items():
        req(f"{url}/put", {"soul": s, "data": node})
port = 18311
svc = subprocess.Popen([BIN, "--config", os.path.join(ROOT, "config.yaml"), "--set", "gun.source=relay",
                        "--set", f"gun.relay_url={url}", "--set", "gun.watch=false",
                        "--set", "log.access=false"], env=dict(os.environ, PORT=str(port)),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(1.5)
for tag in ["str", "lnk"]:
    before = req(f"{url}/stats")["gets"]
    t = time.time()
    body = req(f"http://127.0.0.1:{port}/api/records?did=did:gun:{P}:{tag}-workout&resolveDepth=2")
    ms = (time.time() - t) * 1000
    after = req(f"{url}/stats")["gets"]
    n = sum(after.values()) - sum(before.values())
    ex0 = body["records"][0]["data"]["workout"]["exercise"][0]
    ok = isinstance(ex0, dict) and isinstance(ex0["data"]["exercise"]["equipmentRequired"][0], dict)
    t = time.time()
    req(f"http://127.0.0.1:{port}/api/records?did=did:gun:{P}:{tag}-workout&resolveDepth=2")
    warm = (time.time() - t) * 1000
    results[tag] = (n, round(ms, 1), round(warm, 2), ok)
    print(tag, "relay GETs", n, "cold ms", round(ms, 1), "warm ms", round(warm, 2), "resolved whole", ok)
svc.terminate(); relay.terminate()
