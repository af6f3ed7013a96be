'use strict';
// A real `plugbox serve` for the tests: the built plugbox ($PLUGBOX, as make
// check sets it, else the one built in this tree), on a scratch plugins
// directory copied from test/plugins and the tree's tests/plugins, with the
// shipped policies plus any the test writes. Stopped (SIGKILL if it must)
// and removed when the test ends.

const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const HERE = path.join(__dirname, '..');
const TOP = path.resolve(HERE, '..', '..', '..');
const PROTO = process.env.PLUGBOX_PROTO || path.join(TOP, 'proto', 'plugbox.proto');
const PLUGBOX = process.env.PLUGBOX || path.join(TOP, 'plugbox');
const TESTS = process.env.PB_TEST_SRCDIR || path.join(TOP, 'tests');
// Time limits stretch on a loaded machine or under valgrind, as the pytest suites' do.
const TIME_SCALE = Number(process.env.PB_TEST_TIME_SCALE || 1) || 1;

function plugbox() {
  return PLUGBOX;
}

// Copies a plugin directory readable by the plugin's own uid.
function copyTree(src, dst) {
  fs.mkdirSync(dst, { recursive: true, mode: 0o755 });
  fs.chmodSync(dst, 0o755);
  for (const ent of fs.readdirSync(src, { withFileTypes: true })) {
    if (ent.name === '__pycache__' || ent.name === '.plugbox') continue;
    const s = path.join(src, ent.name);
    const d = path.join(dst, ent.name);
    if (ent.isDirectory()) copyTree(s, d);
    else if (ent.isFile()) {
      fs.copyFileSync(s, d);
      fs.chmodSync(d, 0o644);
    }
  }
}

function findPlugin(name) {
  for (const set of [path.join(HERE, 'plugins'), path.join(TESTS, 'plugins', 'hostile'), path.join(TESTS, 'plugins', 'serve')]) {
    const p = path.join(set, name);
    if (fs.existsSync(p)) return p;
  }
  throw new Error(`no test plugin ${name}`);
}

class Daemon {
  constructor(dir, sock, proc, logPath) {
    this.dir = dir;
    this.sock = sock;
    this.proc = proc;
    this.logPath = logPath;
    this.exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  }

  get pid() {
    return this.proc.pid;
  }

  stderr() {
    try {
      return fs.readFileSync(this.logPath, 'utf8');
    } catch {
      return '';
    }
  }

  async stop(signal = 'SIGTERM', within = 15000) {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    let timer;
    const late = new Promise((resolve) => {
      timer = setTimeout(() => {
        this.proc.kill('SIGKILL');
        resolve(null);
      }, within);
    });
    const status = await Promise.race([this.exited, late]);
    clearTimeout(timer);
    return status;
  }

  // SIGTERM, as an operator stops it (a sanitizer build then checks its
  // exit for leaks); SIGKILL if it is still there 15 s later.
  async cleanup() {
    await this.stop('SIGTERM', 15000);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// startDaemon({ plugins: [names], policies: {name: text}, args: [...] }) -> Daemon,
// once it says it is listening.
async function startDaemon(options = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pbnode-'));
  fs.chmodSync(dir, 0o755);
  const plugins = path.join(dir, 'plugins');
  fs.mkdirSync(plugins, { mode: 0o755 });
  fs.chmodSync(plugins, 0o755);
  for (const name of options.plugins || ['nodetools']) copyTree(findPlugin(name), path.join(plugins, name));
  const args = ['serve', '--plugins', plugins, '--socket', path.join(dir, 's.sock')];
  if (options.policies) {
    const pol = path.join(dir, 'policies');
    fs.mkdirSync(pol, { mode: 0o755 });
    const shipped = process.env.PLUGBOX_POLICIES || path.join(TOP, 'policies');
    for (const f of fs.readdirSync(shipped)) {
      if (f.endsWith('.policy')) fs.copyFileSync(path.join(shipped, f), path.join(pol, f));
    }
    for (const [name, text] of Object.entries(options.policies)) fs.writeFileSync(path.join(pol, `${name}.policy`), text);
    args.push('--policies', pol);
  }
  args.push(...(options.args || []));
  const logPath = path.join(dir, 'serve.log');
  const log = fs.openSync(logPath, 'w');
  // Outside make check, the worker and the policies of this tree.
  const env = {
    ...process.env,
    PLUGBOX_WORKER: process.env.PLUGBOX_WORKER || path.join(TOP, 'plugbox-worker'),
    PLUGBOX_POLICIES: process.env.PLUGBOX_POLICIES || path.join(TOP, 'policies'),
  };
  const proc = spawn(plugbox(), args, { stdio: ['ignore', log, log], detached: true, env });
  fs.closeSync(log);
  const daemon = new Daemon(dir, path.join(dir, 's.sock'), proc, logPath);
  const deadline = Date.now() + 15000 * TIME_SCALE;
  while (!daemon.stderr().includes('listening on')) {
    if (proc.exitCode !== null || proc.signalCode !== null || Date.now() > deadline) {
      const text = daemon.stderr();
      await daemon.cleanup();
      throw new Error(`plugbox serve did not start (${proc.exitCode ?? proc.signalCode}):\n${text}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return daemon;
}

module.exports = { startDaemon, PROTO, TOP, TIME_SCALE, plugbox };
