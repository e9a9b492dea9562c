"""Profile of ReferenceScorer.scores (one 600x400 eval15 pair, one thread): where the metrics' time goes."""
import json, os, subprocess, sys, time, torch
torch.set_num_threads(1)
from semprior.data.io import read_image
from semprior.metrics.scorer import ReferenceScorer
lol = sys.argv[1]; out = sys.argv[2]
lo = read_image(f'{lol}/eval15/low/1.png').unsqueeze(0); hi = read_image(f'{lol}/eval15/high/1.png').unsqueeze(0)
pred = (lo * 3).clamp(0, 1)
sc = ReferenceScorer(hi); sc.scores(pred)
from torch.profiler import profile
with profile() as p:
    for _ in range(3): sc.scores(pred)
ka = sorted(p.key_averages(), key=lambda e: -e.self_cpu_time_total)
tot = sum(e.self_cpu_time_total for e in ka)
sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
lines = [f"Commit {sha}; command `OMP_NUM_THREADS=1 python {' '.join(sys.argv)}` ("
         "torch.profiler self CPU time of 3 ReferenceScorer.scores calls, eval15 pair 1.png, prediction = 3 x low); "
         f"load at end {[round(v, 2) for v in os.getloadavg()]}", "", "| op | calls | share |", "|---|---|---|"]
lines += [f"| {e.key} | {e.count} | {100 * e.self_cpu_time_total / tot:.1f} % |" for e in ka[:12]]
open(out + ".md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
