import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './redis.js';

const run = promisify(execFile);

export interface RabbitServer {
  readonly node: string;
  readonly port: number;
  readonly url: string;
  /** The TLS listener (`amqps://`, server certificate for localhost and 127.0.0.1, signed by `caFile`). */
  readonly tlsUrl: string;
  readonly caFile: string;
  /** `rabbitmqctl -n <node> <args>` (stdout). */
  ctl(...args: string[]): Promise<string>;
  /** `rabbitmqctl list_queues name messages_ready messages_unacknowledged consumers` as rows. */
  queues(): Promise<{ name: string; ready: number; unacked: number; consumers: number }[]>;
  /** The beam process id (to kill it at an exact moment). */
  pid(): Promise<number>;
  /** kill -9 the beam process (or wait for `pid`, already killed), leaving its data dir as it is. */
  kill9(killed?: number): Promise<void>;
  /** Start it again on the same ports and data dir. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** `rabbitmqctl -n <node> <args>` against a running node (stdout). */
export async function rabbitCtl(node: string, ...args: string[]): Promise<string> {
  return (await run('rabbitmqctl', ['-n', node, ...args], { timeout: 60_000 })).stdout;
}

/**
 * A fresh virtual host on the node, open to `guest`, as an `amqp://` URL: a test
 * file's own namespace of queues and exchanges on the shared server.
 */
export async function freshVhost(baseUrl: string, node: string, name: string): Promise<string> {
  await rabbitCtl(node, 'add_vhost', name);
  await rabbitCtl(node, 'set_permissions', '-p', name, 'guest', '.*', '.*', '.*');
  return `${baseUrl}/${encodeURIComponent(name)}`;
}

/** The uid/gid of Debian's `rabbitmq` user: rabbitmq-server started as root drops to it. */
async function rabbitmqIds(): Promise<{ uid: number; gid: number } | undefined> {
  if (userInfo().uid !== 0) return undefined;
  const [uid, gid] = await Promise.all([run('id', ['-u', 'rabbitmq']), run('id', ['-g', 'rabbitmq'])]);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

export interface RabbitOptions {
  /** Extra `rabbitmq.conf` lines, e.g. `consumer_timeout = 15000`. */
  readonly config?: readonly string[];
  /**
   * Erlang terms for `advanced.config` (settings the .conf format has no key for), e.g.
   * `[{rabbit, [{channel_tick_interval, 1000}]}].` — a channel checks `consumer_timeout` once per tick
   * (60 s by default), so a 15 s timeout closes a channel 15 to 75 s after the delivery.
   */
  readonly advanced?: string;
}

/**
 * A private RabbitMQ node (Debian's rabbitmq-server) on free loopback ports, with
 * every file in a temp dir owned by the `rabbitmq` user. Heartbeat 5 s. Up in ~4 s.
 */
export async function startRabbit(options: RabbitOptions = {}): Promise<RabbitServer> {
  const [port, distPort] = [await freePort(), await freePort()];
  const node = `celeriac${port}@localhost`;
  const dir = mkdtempSync(join(tmpdir(), 'celeriac-rabbit-'));
  const ids = await rabbitmqIds();
  for (const sub of ['mnesia', 'log']) mkdirSync(join(dir, sub));
  writeFileSync(join(dir, 'enabled_plugins'), '[].\n');
  // A TLS listener too (amqps://), with a CA and a server certificate for localhost made here.
  const tlsPort = await freePort();
  const tls = join(dir, 'tls');
  mkdirSync(tls);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: tls, stdio: 'ignore' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=celeriac test CA', '-keyout', 'ca.key', '-out', 'ca.crt');
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', 'server.key', '-out', 'server.csr');
  writeFileSync(join(tls, 'san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'san.ext', '-out', 'server.crt');
  writeFileSync(
    join(dir, 'rabbitmq.conf'),
    [
      'heartbeat = 5', 'loopback_users = none', 'log.console = false', 'log.file.level = warning',
      `listeners.ssl.default = 127.0.0.1:${tlsPort}`,
      `ssl_options.cacertfile = ${join(tls, 'ca.crt')}`, `ssl_options.certfile = ${join(tls, 'server.crt')}`, `ssl_options.keyfile = ${join(tls, 'server.key')}`,
      'ssl_options.verify = verify_none', 'ssl_options.fail_if_no_peer_cert = false',
      ...(options.config ?? []),
    ].join('\n') + '\n',
  );
  if (options.advanced) writeFileSync(join(dir, 'advanced.config'), `${options.advanced}\n`);
  if (ids) for (const p of ['', 'mnesia', 'log', 'enabled_plugins', 'rabbitmq.conf', ...(options.advanced ? ['advanced.config'] : []), 'tls', ...readdirSync(tls).map((f) => join('tls', f))]) chownSync(join(dir, p), ids.uid, ids.gid);
  const env = {
    ...process.env,
    RABBITMQ_NODENAME: node,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq'),
    ...(options.advanced ? { RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, 'advanced.config') } : {}),
    RABBITMQ_FEATURE_FLAGS_FILE: join(dir, 'feature_flags'),
    RABBITMQ_PID_FILE: join(dir, 'pid'),
  };
  const ctl = async (...args: string[]): Promise<string> => (await run('rabbitmqctl', ['-n', node, ...args], { env, timeout: 60_000 })).stdout;
  let proc!: ChildProcess;
  const launch = async (): Promise<void> => {
    proc = spawn('rabbitmq-server', [], { env, stdio: 'ignore', detached: true });
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`rabbitmq-server exited with ${proc.exitCode}; logs in ${join(dir, 'log')}`);
      const ok = await run('rabbitmq-diagnostics', ['-n', node, '-q', 'check_port_connectivity'], { env, timeout: 20_000 }).then(() => true, () => false);
      if (ok) return;
      if (Date.now() > deadline) throw new Error(`rabbitmq node ${node} did not come up within 60 s; logs in ${join(dir, 'log')}`);
      await new Promise((r) => setTimeout(r, 300));
    }
  };
  const beamPid = async (): Promise<number> =>
    Number((await run('rabbitmqctl', ['-n', node, 'eval', 'list_to_integer(os:getpid()).'], { env, timeout: 20_000 })).stdout.trim());
  await launch();
  return {
    node,
    port,
    url: `amqp://guest:guest@127.0.0.1:${port}`,
    tlsUrl: `amqps://guest:guest@localhost:${tlsPort}`,
    caFile: join(tls, 'ca.crt'),
    ctl,
    async queues() {
      const out = await ctl('list_queues', '-q', '--no-table-headers', 'name', 'messages_ready', 'messages_unacknowledged', 'consumers');
      return out
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => {
          const [name = '', ready, unacked, consumers] = l.split('\t');
          return { name, ready: Number(ready), unacked: Number(unacked), consumers: Number(consumers) };
        });
    },
    pid: beamPid,
    async kill9(killed?: number) {
      const pid = killed ?? (await beamPid());
      if (killed === undefined) process.kill(pid, 'SIGKILL');
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline) {
        try {
          process.kill(pid, 0);
        } catch {
          break;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise<void>((resolve) => (proc.exitCode !== null || proc.signalCode !== null ? resolve() : proc.once('exit', () => resolve())));
    },
    async restart() {
      await launch();
    },
    async stop() {
      // A node in a bad state may not answer `stop`: its beam process is killed then, so no node outlives the run.
      const pid = await beamPid().catch(() => undefined);
      await run('rabbitmqctl', ['-n', node, 'stop'], { env, timeout: 30_000 }).catch(() => undefined);
      if (pid !== undefined) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
      // epmd may stay (it is shared by every node on the machine); the node itself is gone now.
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
