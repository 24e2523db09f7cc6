// A TCP relay on 127.0.0.1 that holds every connection until it is opened: a delivery target put behind it is
// reached but never answers, so a test knows for certain that a delivery is under way (for instance to kill the
// server in the middle of it). Once opened, held and new connections are relayed to the target.
import net, { type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export class TcpGate {
  private readonly server: Server;
  private readonly held = new Set<Socket>();
  private readonly relayed = new Set<Socket>();
  private isOpen = false;
  port = 0;

  constructor(private readonly targetPort: number) {
    this.server = net.createServer((client) => {
      client.on('error', () => client.destroy());
      if (this.isOpen) this.relay(client);
      else {
        client.pause();
        this.held.add(client);
        client.once('close', () => this.held.delete(client));
      }
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** Connections waiting at the gate (opened by a client, not relayed). */
  get waiting(): number {
    return this.held.size;
  }

  open(): void {
    this.isOpen = true;
    for (const c of [...this.held]) {
      this.held.delete(c);
      this.relay(c);
    }
  }

  private relay(client: Socket): void {
    const upstream = net.connect(this.targetPort, '127.0.0.1');
    this.relayed.add(client).add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      this.relayed.delete(client);
      this.relayed.delete(upstream);
    };
    upstream.on('error', end).on('close', end);
    client.on('close', end);
    client.pipe(upstream).pipe(client);
    client.resume();
  }

  async close(): Promise<void> {
    for (const s of [...this.held, ...this.relayed]) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
