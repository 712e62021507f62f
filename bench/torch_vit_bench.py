# The PyTorch reference for `npm run bench -- vision`: the same ViT encoder and projector
# as src/model/vision.ts (patch embedding as a stride-P convolution, learned positions,
# pre-LayerNorm blocks with bidirectional attention, tanh GELU, a 2-layer projector),
# timed on random images: forward only (no_grad), and a training step (forward,
# per-patch cross-entropy, backward, AdamW). Prints one JSON line.
import argparse, json, math, time
import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--image-size", type=int, default=64)
p.add_argument("--patch-size", type=int, default=8)
p.add_argument("--hidden", type=int, default=192)
p.add_argument("--layers", type=int, default=6)
p.add_argument("--heads", type=int, default=3)
p.add_argument("--out", type=int, default=192)
p.add_argument("--batch", type=int, default=16)
p.add_argument("--steps", type=int, default=10)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--mode", choices=["forward", "train"], default="forward")
p.add_argument("--autocast", choices=["none", "bf16"], default="none")
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)


class Block(nn.Module):
    def __init__(s, h, heads, inter):
        super().__init__()
        s.heads = heads
        s.ln1, s.ln2 = nn.LayerNorm(h), nn.LayerNorm(h)
        s.qkv, s.proj = nn.Linear(h, 3 * h), nn.Linear(h, h)
        s.fc1, s.fc2 = nn.Linear(h, inter), nn.Linear(inter, h)

    def forward(s, x):
        B, T, C = x.shape
        q, k, v = s.qkv(s.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, s.heads, C // s.heads).transpose(1, 2) for t in (q, k, v))
        att = torch.softmax((q @ k.transpose(-2, -1)) / math.sqrt(C // s.heads), dim=-1)
        x = x + s.proj((att @ v).transpose(1, 2).reshape(B, T, C))
        return x + s.fc2(F.gelu(s.fc1(s.ln2(x)), approximate="tanh"))


class Vit(nn.Module):
    def __init__(s):
        super().__init__()
        n = (a.image_size // a.patch_size) ** 2
        s.patch = nn.Conv2d(3, a.hidden, a.patch_size, a.patch_size, bias=False)
        s.pos = nn.Parameter(torch.randn(n, a.hidden) * 0.02)
        s.blocks = nn.ModuleList(Block(a.hidden, a.heads, 4 * a.hidden) for _ in range(a.layers))
        s.ln = nn.LayerNorm(a.hidden)
        s.p1, s.p2 = nn.Linear(a.hidden, a.out), nn.Linear(a.out, a.out)

    def forward(s, img):
        x = s.patch(img).flatten(2).transpose(1, 2) + s.pos
        for b in s.blocks:
            x = b(x)
        return s.p2(F.gelu(s.p1(s.ln(x)), approximate="tanh"))


model = Vit()
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
n = (a.image_size // a.patch_size) ** 2


def step():
    img = torch.randn(a.batch, 3, a.image_size, a.image_size)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if a.autocast == "bf16" else torch.autocast("cpu", enabled=False)
    if a.mode == "forward":
        with torch.no_grad(), ctx:
            model(img)
        return
    labels = torch.randint(0, a.out, (a.batch * n,))
    with ctx:
        out = model(img)
    loss = F.cross_entropy(out.float().view(-1, a.out), labels)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


for _ in range(2):
    step()
times = []
for _ in range(a.steps):
    t = time.perf_counter()
    step()
    times.append(time.perf_counter() - t)
ms = sorted(times)[len(times) // 2] * 1000
print(json.dumps({"step_ms_median": ms, "images_per_s": a.batch / (ms / 1000)}))
