#!/usr/bin/env python3
# perf samples of one `shapex run`, by symbol, and the samples inside Vm::RunFrameLoop by
# opcode handler (interpreter.cc CASE line ranges; addresses just before an indirect jump are
# counted as <dispatch>). Needs a shapex whose interpreter.cc object has -g (the release
# flags plus -g give the same code; docs/benchmarks.md, "Where the time goes"):
#   perf record -o prof.data SHAPEX_G run tools/bench/vm/richards.shape -- 150000
#   tools/bench/perf_by_opcode.py SHAPEX_G prof.data engine/src/interpreter.cc
import re, subprocess, sys, collections
binary, data, src = sys.argv[1], sys.argv[2], sys.argv[3]
nm = subprocess.run(["nm", binary], capture_output=True, text=True).stdout
BASE = next(int(l.split()[0], 16) for l in nm.splitlines() if l.endswith("_ZN6shapex6engine2Vm12RunFrameLoopEm"))
dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", binary, "--start-address=%d" % BASE,
                      "--stop-address=%d" % (BASE + 0x4200)], capture_output=True, text=True).stdout
jmps = [int(l.split(":")[0], 16) for l in dis.splitlines() if "jmp    *" in l]
out = subprocess.run(["perf", "script", "-i", data, "-F", "ip,sym,symoff"], capture_output=True, text=True).stdout
total = 0
syms = collections.Counter(); ips = collections.Counter()
for line in out.splitlines():
    parts = line.split(None, 1)
    if not parts: continue
    total += 1
    sym = parts[1].strip() if len(parts) > 1 else "?"
    m = re.search(r"\+(0x[0-9a-f]+)$", sym)
    base = re.sub(r"\+0x[0-9a-f]+$", "", sym)
    syms[base] += 1
    if base.startswith("shapex::engine::Vm::RunFrameLoop") and "cold" not in base and m:
        ips[BASE + int(m.group(1), 16)] += 1
lines = open(src).read().splitlines()
starts = []
for n, l in enumerate(lines, 1):
    if l.lstrip().startswith("#define"): continue
    m = re.search(r"CASE\((\w+)\)|^\s*(?:ARITH_OP|SLOW_ARITH_OP|DIV_OP|MOD_OP|IMM_COMPARE)\((\w+)", l)
    if m: starts.append((n, m.group(1) or m.group(2)))
    m2 = re.match(r"^(\w+):", l.strip())
    if m2 and m2.group(1) in ("refuel", "error", "do_return"): starts.append((n, "<" + m2.group(1) + ">"))
starts.sort()
def op_for(line):
    name = "<prologue>"
    for n, op in starts:
        if n <= line: name = op
        else: break
    return name
addrs = [a for a in ips if not any(j - 0x24 <= a <= j for j in jmps)]
res = subprocess.run(["addr2line", "-a", "-i", "-e", binary] + [hex(a) for a in addrs], capture_output=True, text=True).stdout
chains = {}; cur = None
for l in res.splitlines():
    if l.startswith("0x"): cur = int(l, 16); chains[cur] = []
    else: chains[cur].append(l)
ops = collections.Counter()
for a, cnt in ips.items():
    if any(j - 0x24 <= a <= j for j in jmps): ops["<dispatch: fuel check, fetch, jmp *>"] += cnt; continue
    line = None
    for c in reversed(chains.get(a, [])):
        if "interpreter.cc" in c:
            m = re.search(r":(\d+)", c)
            if m: line = int(m.group(1)); break
    ops[op_for(line) if line else "<unknown>"] += cnt
print(f"total samples {total}")
for s, c in syms.most_common(10): print(f"  {100*c/total:5.1f}%  {s}")
print("RunFrameLoop by handler (% of all samples):")
for op, c in ops.most_common(16): print(f"  {100*c/total:5.1f}%  {op}")
