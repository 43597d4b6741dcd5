/**
 * A TCP proxy in this process that counts the packets each way: how suites count a client's round trips
 * to the server. A packet the client writes while an operation is pending is read by the proxy before the
 * answer can come back; a packet written after the answer (postgres.js writes on setImmediate) is read
 * after the caller has resumed.
 */
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net'

/** A running {@link startCountingProxy}. */
export interface CountingProxy {
  port: number
  /** reads from the client (`toServer`) and from the server (`toClient`) so far */
  counts: { toServer: number; toClient: number }
  /** `url` with its host and port replaced by this proxy's */
  proxied(url: string): string
  close(): Promise<void>
}

/** Starts a proxy on 127.0.0.1 (a free port) in front of `host:port`. */
export async function startCountingProxy(host: string, port: number): Promise<CountingProxy> {
  const counts = { toServer: 0, toClient: 0 }
  const sockets = new Set<Socket>()
  const server: Server = createServer((client) => {
    const upstream = connect({ host, port, noDelay: true })
    client.setNoDelay(true)
    sockets.add(client).add(upstream)
    client.on('data', (chunk) => {
      counts.toServer++
      upstream.write(chunk)
    })
    upstream.on('data', (chunk) => {
      counts.toClient++
      client.write(chunk)
    })
    const closeBoth = () => {
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    client.on('close', closeBoth).on('error', closeBoth)
    upstream.on('close', closeBoth).on('error', closeBoth)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const proxyPort = (server.address() as AddressInfo).port
  return {
    port: proxyPort,
    counts,
    proxied(url) {
      const parsed = new URL(url)
      parsed.hostname = '127.0.0.1'
      parsed.port = String(proxyPort)
      return parsed.toString()
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  }
}
