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
"""
import argparse
import json
import math
import random
import time

import paho.mqtt.client as mqtt


def now_iso():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def device_number(topic):
    """n of device/<n>/cmd, or None."""
    parts = topic.split("/")
    if len(parts) == 3 and parts[0] == "device" and parts[2] == "cmd" and parts[1]:
        return parts[1]
    return None


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

    def on_connect(c, userdata, flags, rc):
        c.subscribe("device/+/cmd", qos=1)

    def on_message(c, userdata, msg):
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

    c = mqtt.Client(client_id="mqgate-demo-sensors", protocol=mqtt.MQTTv311)
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
