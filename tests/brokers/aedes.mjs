// aedes (MQTT 3.1.1, in memory) on 127.0.0.1:PORT, for the broker tests
// (tests/integration/mqgtest.py, class Aedes). Prints "listening PORT"
// once it accepts connections; exits 0 on SIGTERM or SIGINT.
//   node aedes.mjs PORT
import net from 'node:net'
import { Aedes } from 'aedes'

const port = Number(process.argv[2])
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node aedes.mjs PORT')
  process.exit(2)
}

const broker = await Aedes.createBroker()
const server = net.createServer(broker.handle)

broker.on('clientError', (client, err) => {
  console.log('client %s error: %s', client && client.id, err.message)
})
broker.on('connectionError', (client, err) => {
  console.log('connection error: %s', err.message)
})
broker.on('client', (client) => console.log('client %s connected', client.id))
broker.on('clientDisconnect', (client) => console.log('client %s disconnected', client.id))

server.on('error', (err) => {
  console.error('cannot listen on 127.0.0.1:%d: %s', port, err.message)
  process.exit(1)
})
server.listen(port, '127.0.0.1', () => console.log('listening %d', port))

function stop () {
  server.close()
  broker.close(() => process.exit(0))
  setTimeout(() => process.exit(0), 2000).unref()
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
