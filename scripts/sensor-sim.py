#!/usr/bin/python3
"""Simulated sensors for the mqgate demo: publishes to an MQTT broker.

sensor/<n>/temp  JSON {"t": 21.50, "unit": "C"} every second
sensor/<n>/hum   a bare JSON number
sensor/door/state  text "open" / "closed"
sensor/gateway/status  retained JSON status, published once
"""
import argparse
import json
import math
import random
import time

import paho.mqtt.client as mqtt


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--sensors", type=int, default=3)
    ap.add_argument("--interval", type=float, default=1.0)
    args = ap.parse_args()

    c = mqtt.Client(client_id="mqgate-demo-sensors", protocol=mqtt.MQTTv311)
    c.connect(args.host, args.port, keepalive=30)
    c.loop_start()
    c.publish("sensor/gateway/status",
              json.dumps({"state": "online", "since": int(time.time())}),
              qos=1, retain=True)
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
