#!/usr/bin/python3
"""Simulated sensors and devices for the mqgate demo, over an MQTT broker.

sensor/<n>/temp  JSON {"t": 21.50, "unit": "C"} every second
sensor/<n>/hum   a bare JSON number
sensor/door/state  text "open" / "closed"
sensor/gateway/status  retained JSON {"state": "online", "since": ISO 8601 time}
device/<n>/cmd   listened to: {"on": true|false} switches device n, anything
                 else toggles it
device/<n>/status  retained JSON {"on": bool, "changed": ISO 8601 time}:
                 once at start, then after every command
device/<n>/rpc   MQTT 5 requests (mqgate's "request"), answered on their
                 response topic with their correlation data:
                 {"get": "firmware"} -> {"firmware": "1.4.2"},
                 {"get": "state"} -> {"on": bool},
                 {"set": {"on": bool}} -> {"done": true, "on": bool},
                 anything else -> {"error": "unknown request"};
                 each answer carries the user property device=<n>
"""
import argparse
import json
import math
import random
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


def now_iso():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def device_number(topic, kind="cmd"):
    """n of device/<n>/<kind>, or None."""
    parts = topic.split("/")
    if len(parts) == 3 and parts[0] == "device" and parts[2] == kind and parts[1]:
        return parts[1]
    return None


def answer(devices, n, payload):
    """The answer of device n to the request payload (bytes)."""
    try:
        req = json.loads(payload.decode("utf-8"))
    except ValueError:
        req = None
    if not isinstance(req, dict):
        return {"error": "unknown request"}
    if req.get("get") == "firmware":
        return {"firmware": "1.4.2"}
    if req.get("get") == "state":
        return {"on": devices[n]}
    s = req.get("set")
    if isinstance(s, dict) and isinstance(s.get("on"), bool):
        devices[n] = s["on"]
        return {"done": True, "on": devices[n]}
    return {"error": "unknown request"}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--sensors", type=int, default=3)
    ap.add_argument("--interval", type=float, default=1.0)
    args = ap.parse_args()

    devices = {str(n): False for n in range(1, args.sensors + 1)}

    def report(c, n):
        c.publish("device/%s/status" % n,
                  json.dumps({"on": devices[n], "changed": now_iso()}),
                  qos=1, retain=True)

    def on_connect(c, userdata, flags, rc, properties=None):
        c.subscribe("device/+/cmd", qos=1)
        c.subscribe("device/+/rpc", qos=1)

    def on_request(c, msg):
        n = device_number(msg.topic, "rpc")
        props = getattr(msg, "properties", None)
        rt = getattr(props, "ResponseTopic", None)
        if n is None or n not in devices or not rt:
            return
        out = Properties(PacketTypes.PUBLISH)
        corr = getattr(props, "CorrelationData", None)
        if corr is not None:
            out.CorrelationData = corr
        out.UserProperty = ("device", n)
        out.ContentType = "application/json"
        was = devices[n]
        c.publish(rt, json.dumps(answer(devices, n, msg.payload)), qos=1, properties=out)
        if devices[n] != was:
            report(c, n)

    def on_message(c, userdata, msg):
        if msg.topic.endswith("/rpc"):
            on_request(c, msg)
            return
        n = device_number(msg.topic)
        if n is None or n not in devices:
            return
        try:
            cmd = json.loads(msg.payload.decode("utf-8"))
        except ValueError:
            cmd = None
        if isinstance(cmd, dict) and isinstance(cmd.get("on"), bool):
            devices[n] = cmd["on"]
        else:
            devices[n] = not devices[n]
        report(c, n)

    c = mqtt.Client(client_id="mqgate-demo-sensors", protocol=mqtt.MQTTv5)
    c.on_connect = on_connect
    c.on_message = on_message
    c.connect(args.host, args.port, keepalive=30)
    c.loop_start()
    c.publish("sensor/gateway/status",
              json.dumps({"state": "online", "since": now_iso()}),
              qos=1, retain=True)
    for n in devices:
        report(c, n)
    door = "closed"
    start = time.time()
    while True:
        now = time.time() - start
        for n in range(1, args.sensors + 1):
            t = 21.0 + 2.5 * math.sin(now / 20.0 + n) + random.uniform(-0.2, 0.2)
            c.publish("sensor/%d/temp" % n,
                      '{"t": %.2f, "unit": "C"}' % t, qos=0)
            c.publish("sensor/%d/hum" % n,
                      "%.1f" % (45 + 10 * math.cos(now / 30.0 + n)), qos=0)
        if random.random() < 0.1:
            door = "open" if door == "closed" else "closed"
            c.publish("sensor/door/state", door, qos=1)
        time.sleep(args.interval)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
