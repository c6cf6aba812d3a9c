// Sessions of www/mqgate.js driven over stdin and stdout, for the tests
// that run the client library behind a real load balancer
// (tests/integration/test_lb_client.py): one JSON command a line in, one
// JSON event a line out. Not a test by itself.
//
// Commands ({"op": ...}; "c" names a session):
//   open {c, url, source?, transport?}  a session (anonymous) on url; with
//        source, its TCP connections come from that local address (through
//        a forwarder of this process), so that a load balancer balancing by
//        source address sees several clients. -> {ev: "ready", c, epoch}
//   sub {c, filter, history?, qos?}     -> {ev: "subscribed", c}, then
//        {ev: "msg", c, topic, value, history, epoch} per message
//   pub {c, topic, n, qos?}             publish {n}; -> {ev: "pub", c, n, ok,
//        code} once the promise settles
//   pubs {c, topic, every}              pub every `every` ms, n = 1, 2, ...
//   stoppubs {c}; close {c}; exit
// Events of each session: {ev: "close", c, code}, {ev: "epoch", c, epoch,
// previous}, {ev: "gateway", ...}, {ev: "recovery", c, filter, recovered,
// replayed, reason, epoch}; {ev: "error", c, message} for a command that
// failed.
//   node --experimental-websocket tests/js/lb-agent.mjs

import net from "node:net";
import readline from "node:readline";
import { MqGate } from "../../www/mqgate.js";

const sessions = new Map();
const out = (ev) => process.stdout.write(JSON.stringify(ev) + "\n");

// A TCP forwarder on 127.0.0.1 to host:port whose outgoing connections are
// bound to source; resolves the URL that reaches url through it.
async function viaSource(url, source) {
  const u = new URL(url);
  const port = Number(u.port) || (u.protocol === "wss:" ? 443 : 80);
  const server = net.createServer((c) => {
    const up = net.connect({ host: u.hostname === "localhost" ? "127.0.0.1" : u.hostname, port, localAddress: source });
    const end = () => { c.destroy(); up.destroy(); };
    for (const s of [c, up]) {
      s.on("error", end);
      s.on("close", end);
    }
    c.pipe(up);
    up.pipe(c);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  server.unref();
  // 127.0.0.1 is in the test certificate as localhost is
  return `${u.protocol}//127.0.0.1:${server.address().port}${u.pathname}`;
}

async function open({ c, url, source, transport = "websocket" }) {
  const gw = new MqGate(source ? await viaSource(url, source) : url, null,
    { transport, backoff: { min: 200, max: 2000, jitter: 0.5 } });
  const s = { gw, timer: null, n: 0 };
  sessions.set(c, s);
  gw.on("close", (d) => out({ ev: "close", c, code: d.code }));
  gw.on("epoch", (d) => out({ ev: "epoch", c, epoch: d.epoch, previous: d.previous }));
  gw.on("gateway", (d) => out({ ev: "gateway", c, ...d }));
  gw.on("recovery", (r) => out({ ev: "recovery", c, filter: r.filter, recovered: r.recovered,
    replayed: r.replayed, reason: r.reason, epoch: r.epoch }));
  await gw.connect();
  out({ ev: "ready", c, epoch: gw.epoch });
}

function pub(c, s, topic, n, qos = 1) {
  s.gw.publish(topic, { n }, { qos }).then(
    () => out({ ev: "pub", c, n, ok: true, code: null }),
    (e) => out({ ev: "pub", c, n, ok: false, code: e.code || String(e) }),
  );
}

const commands = {
  open,
  async sub({ c, filter, history, qos = 1 }) {
    const s = sessions.get(c);
    const opts = { qos };
    if (history) opts.history = history;
    await s.gw.subscribe(filter, (m) => out({ ev: "msg", c, topic: m.topic, value: m.value,
      history: m.history === true, epoch: s.gw.epoch }), opts);
    out({ ev: "subscribed", c });
  },
  pub({ c, topic, n, qos }) {
    pub(c, sessions.get(c), topic, n, qos);
  },
  pubs({ c, topic, every }) {
    const s = sessions.get(c);
    s.timer = setInterval(() => pub(c, s, topic, ++s.n), every);
  },
  stoppubs({ c }) {
    clearInterval(sessions.get(c).timer);
    out({ ev: "stopped", c, n: sessions.get(c).n });
  },
  close({ c }) {
    const s = sessions.get(c);
    clearInterval(s.timer);
    s.gw.close();
    sessions.delete(c);
  },
  exit() {
    for (const s of sessions.values()) s.gw.close();
    process.exit(0);
  },
};

readline.createInterface({ input: process.stdin }).on("line", async (line) => {
  let cmd;
  try {
    cmd = JSON.parse(line);
    await commands[cmd.op](cmd);
  } catch (e) {
    out({ ev: "error", c: cmd && cmd.c, message: String((e && e.message) || e) });
  }
});
process.stdin.on("end", () => commands.exit());
