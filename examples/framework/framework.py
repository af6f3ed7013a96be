#!/usr/bin/python3
"""framework.py - a small plugin framework written in Python over plugbox.

The entry-point plugin pattern, made safe: a framework that runs `run()` of
every plugin registered under the group `typeA`, the way

    for ep in entry_points(group="typeA"):
        ep.load()()

does, except that each plugin runs in its own sandboxed worker process. So
plugins may vendor conflicting versions of one dependency, and a hostile
plugin is stopped by the kernel instead of owning the framework.

    python3 examples/framework/framework.py [--plugins DIR] [--policies DIR]

Its plugins (examples/framework/plugins/):

  plug1, plug2     vendor requests 2.2.0 and 2.3.0 (stand-ins) in deps/
  typeA_plugin1,   provide the entry-point group typeA, laid out the way
  typeA_plugin2    `pip install --target` leaves a distribution
  typeA_evil       also provides typeA, and attacks: it reads /etc/shadow
                   and ptraces its supervisor
  reporter         calls back lookup_user(), a function of this framework;
                   its policy (examples/framework/policies/reporter.policy)
                   grants it, no other plugin may call it

It prints what happened, and exits 0 when everything behaved as expected:
both dependency versions seen side by side, every typeA plugin answered or
was stopped by the sandbox (and the hostile one was), the host function
round trip worked for the plugin granted it and was refused to another.
"""

import argparse
import asyncio
import os
import sys

try:
    import plugbox
except ImportError as e:
    print(f"framework: cannot import plugbox ({e}): install it (make install), or put an "
          "importable copy of the built package on PYTHONPATH (see tests/python/run.sh)",
          file=sys.stderr)
    sys.exit(2)

FRAMEWORK_VERSION = "0.0.1"
HERE = os.path.dirname(os.path.abspath(__file__))

# The framework's own data, which plugins reach only through lookup_user().
USERS = {
    7: {"name": "Ada Lovelace", "email": "ada@example.org", "roles": ["admin", "analyst"]},
}


class Framework:
    def __init__(self, plugins_dir, policies_dir):
        self.plugins_dir = os.path.abspath(plugins_dir)
        self.policies_dir = os.path.abspath(policies_dir)
        self.printed = {}       # plugin -> lines it printed, not yet shown
        self.transcript = []    # (plugin, line) of everything plugins printed
        self.host_calls = []    # (plugin, user_id) per lookup_user() call
        self.problems = []      # what did not behave as expected

    # ---- what plugins may reach ------------------------------------------

    def on_output(self, plugin, stream, line):
        """Every line a plugin prints ("stdout", "stderr"), its logging records
        ("log") and the supervisor's notes about it ("supervisor")."""
        if stream == "supervisor":
            line = "(plugbox) " + line
        self.printed.setdefault(plugin, []).append(line)
        self.transcript.append((plugin, line))

    def lookup_user(self, user_id, *, plugin):
        """A host function: runs here, in the framework, when a plugin whose
        policy grants it calls plugbox.host.lookup_user(user_id). `plugin`
        is the caller's name, filled in by plugbox (a plugin cannot set it)."""
        user = USERS.get(user_id)
        self.host_calls.append((plugin, user_id))
        if user is None:
            raise KeyError(f"no user {user_id}")
        return user

    # ---- the report ------------------------------------------------------

    def expect(self, ok, what):
        if not ok:
            self.problems.append(what)
        return ok

    def show_output(self, plugin, indent="      "):
        for line in self.printed.pop(plugin, []):
            print(f"{indent}[{plugin}] {line}")

    def run(self):
        print(f"Framework {FRAMEWORK_VERSION} is running.")
        print(f"  plugins:  {self.plugins_dir}")
        print(f"  policies: {self.policies_dir}")
        # log="lines": the plugins' log records join their printed lines in
        # the transcript (the default makes them LogRecords in our logging)
        with plugbox.Supervisor(self.plugins_dir, self.policies_dir, timeout=30.0,
                                output=self.on_output, log="lines") as sup:
            sup.register("lookup_user", self.lookup_user)
            infos = self.list_plugins(sup)
            self.side_by_side(sup, infos)
            self.hook_typeA(sup)
            self.host_round_trip(sup)
        print()
        if self.problems:
            print("Framework is exiting: something did not behave as expected:")
            for p in self.problems:
                print(f"  - {p}")
            return 1
        print("Framework is now exiting: every plugin behaved as expected.")
        return 0

    def list_plugins(self, sup):
        print("\nPlugins (sup.plugins()):")
        infos = {p.name: p for p in sup.plugins()}
        for p in infos.values():
            eps = ", ".join(f"{e.group}:{e.name} = {e.value}" for e in p.entry_points)
            if p.error is not None:
                print(f"  {p.name:14} cannot start: {p.error}")
                continue
            print(f"  {p.name:14} {p.layout:8} {p.version or '-':6} {eps}".rstrip())
        return infos

    def side_by_side(self, sup, infos):
        """One dependency, two versions: each plugin sees its own."""
        print("\nConflicting dependencies, side by side (await sup.acall(...), concurrently):")
        names = [n for n in ("plug1", "plug2") if n in infos]

        async def ask_all():
            return await asyncio.gather(*(sup.acall(n, "which_requests") for n in names),
                                        return_exceptions=True)

        seen = {}
        for name, answer in zip(names, asyncio.run(ask_all())):
            if isinstance(answer, BaseException):
                print(f"  {name:14} failed: {answer!r}")
                self.expect(False, f"{name}.which_requests() failed: {answer}")
                continue
            where = os.path.relpath(answer["file"], self.plugins_dir)
            print(f"  {name:14} imports requests {answer['version']} from {where}")
            seen[name] = answer["version"]
        self.expect(seen.get("plug1") == "2.2.0", "plug1 should see requests 2.2.0")
        self.expect(seen.get("plug2") == "2.3.0", "plug2 should see requests 2.3.0")

    def hook_typeA(self, sup):
        """Every typeA entry point of every plugin, concurrently; one failure
        hides no other answer."""
        print('\nEntry-point group typeA (sup.hook("typeA", context)):')
        results = sup.hook("typeA", {"framework": FRAMEWORK_VERSION})
        stopped = answered = 0
        for r in results:
            print(f"  {r.plugin}/{r.name or '(could not start)'}:")
            self.show_output(r.plugin)
            if r.ok:
                answered += 1
                print(f"      -> {r.value!r}")
            elif isinstance(r.error, plugbox.SandboxViolation):
                stopped += 1
                e = r.error
                print(f"      -> stopped by the sandbox: SandboxViolation: syscall {e.syscall}, "
                      f"rule {e.rule}")
                where = [line.strip() for line in e.remote_traceback.splitlines()
                         if line.strip().startswith("File ")]
                if where:   # the plugin's stack at the call, most recent first
                    print("         where: " + where[0].replace(self.plugins_dir + os.sep, ""))
            else:
                print(f"      -> {type(r.error).__name__}: {r.error}")
                self.expect(False, f"{r.plugin}/{r.name} failed: {r.error!r}")
        print(f"  {answered} answered, {stopped} stopped by the sandbox, in plugin order")
        self.expect(answered >= 2, "the well-behaved typeA plugins should answer")
        evil = [r for r in results if r.plugin == "typeA_evil"]
        self.expect(len(evil) == 1 and isinstance(evil[0].error, plugbox.SandboxViolation)
                    and evil[0].error.syscall == "ptrace",
                    "typeA_evil should be stopped by the sandbox at ptrace")
        said = [line for plugin, line in self.transcript if plugin == "typeA_evil"]
        self.expect(any(line.startswith("could not read /etc/shadow") for line in said)
                    and not any(line.startswith("read /etc/shadow") for line in said),
                    "typeA_evil should try to read /etc/shadow, and fail")
        # The others still answer after the violation:
        try:
            again = sup.call("plug1", "which_requests")["version"]
            print(f"  after that, plug1 still answers: requests {again}")
        except plugbox.Error as e:
            self.expect(False, f"plug1 stopped answering after the violation: {e}")

    def host_round_trip(self, sup):
        """A plugin calls the framework back, if its policy grants it."""
        print("\nHost function lookup_user(), granted to reporter by reporter.policy:")
        before = len(self.host_calls)
        try:
            text = sup.call("reporter", "report", 7)
            print(f"  reporter.report(7) -> {text!r}")
        except plugbox.Error as e:
            text = None
            print(f"  reporter.report(7) failed: {type(e).__name__}: {e}")
        self.show_output("reporter", indent="    ")
        calls = self.host_calls[before:]
        print(f"  lookup_user() ran in the framework {len(calls)} time(s): {calls}")
        self.expect(text is not None and text.startswith("Ada Lovelace"),
                    "reporter.report(7) should return Ada's report")
        self.expect(calls == [("reporter", 7)], "reporter should call lookup_user(7) once")
        try:
            refused = sup.call("plug1", "ask_host", 7)
        except plugbox.Error as e:
            refused = f"{type(e).__name__}: {e}"
        print(f"  plug1 (not granted) -> {refused}")
        self.show_output("plug1", indent="    ")
        self.expect(isinstance(refused, str) and refused.startswith("PermissionError"),
                    "plug1 must not be allowed to call lookup_user")


def main(argv=None):
    ap = argparse.ArgumentParser(description="An example plugin framework over plugbox.")
    ap.add_argument("--plugins", default=os.path.join(HERE, "plugins"),
                    help="plugins directory (default: %(default)s)")
    ap.add_argument("--policies", default=os.path.join(HERE, "policies"),
                    help="the operator's policies (default: %(default)s)")
    args = ap.parse_args(argv)
    try:
        return Framework(args.plugins, args.policies).run()
    except plugbox.Error as e:
        print(f"framework: {type(e).__name__}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
