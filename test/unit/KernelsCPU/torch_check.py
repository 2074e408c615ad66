#!/usr/bin/python3
"""Cross-checks the float CPU kernels against PyTorch.

Usage: torch_check.py DRIVER OUTPUT

Runs DRIVER (MLLMKernelsCPUTorchDriver) to write OUTPUT, recomputes every op
from the recorded inputs with torch (autograd for the gradients), and fails
when any result differs by more than 1e-5 relative: max |ours - torch| /
max |torch| over the tensor. Optimizer states after 5 steps must agree to
5e-7. Exits 77 (CTest SKIP_RETURN_CODE) when torch cannot be imported.
"""

import math
import struct
import subprocess
import sys
import warnings

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:  # pragma: no cover - depends on the machine
    print(f"SKIP: torch is not available to {sys.executable}: {e}")
    sys.exit(77)

# F.conv1d(padding='same') with an even kernel pads a copy; that is fine here.
warnings.filterwarnings("ignore", message="Using padding='same'")

TOL = 1e-5
OPTIM_TOL = 5e-7


def read_records(path):
    """Returns {name: tensor or float} from the driver's file."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"MLLMKCPU":
        raise SystemExit(f"{path}: bad magic")
    pos, out = 8, {}
    while pos < len(data):
        (n,) = struct.unpack_from("<I", data, pos)
        pos += 4
        name = data[pos:pos + n].decode()
        pos += n
        dtype = data[pos]
        (rank,) = struct.unpack_from("<I", data, pos + 1)
        pos += 5
        shape = list(struct.unpack_from(f"<{rank}q", data, pos))
        pos += 8 * rank
        count = math.prod(shape)
        if dtype == 2:
            (out[name],) = struct.unpack_from("<d", data, pos)
            pos += 8
            continue
        tdtype, size = {0: (torch.float32, 4), 1: (torch.int64, 8)}[dtype]
        buf = bytearray(data[pos:pos + count * size])
        pos += count * size
        out[name] = torch.frombuffer(buf, dtype=tdtype).reshape(shape)
    return out


class Checker:
    def __init__(self, records):
        self.r = records
        self.failures = []
        self.checked = 0

    def t(self, name, grad=False):
        """A float64 copy of a recorded float tensor (exact)."""
        x = self.r[name].double().clone()
        return x.requires_grad_(grad)

    def compare(self, label, ours, ref, tol=TOL):
        ours = torch.as_tensor(ours, dtype=torch.float64)
        ref = torch.as_tensor(ref, dtype=torch.float64).detach()
        if ours.shape != ref.shape:
            self.failures.append(f"{label}: shape {tuple(ours.shape)} vs "
                                 f"{tuple(ref.shape)}")
            return
        scale = max(ref.abs().max().item(), 1e-12)
        err = (ours - ref).abs().max().item() / scale
        self.checked += 1
        status = "ok" if err <= tol else "FAIL"
        print(f"{status:4} {label:28} rel err {err:.2e}")
        if not err <= tol:
            self.failures.append(f"{label}: {err:.3e} > {tol:.0e}")


def float_ref(fn, *tensors):
    """Runs fn in float32 (as a PyTorch model would) on float64 leaves and
    returns the output and the float32 leaves for gradients."""
    leaves = [t.detach().float().requires_grad_(True) for t in tensors]
    return fn(*leaves), leaves


def check_layer(c, prefix, fn, inputs, outputs, upstream):
    """Forward outputs and gradients (of <upstream, fn(...)>) of `inputs`."""
    y, leaves = float_ref(fn, *[c.t(f"{prefix}.{i}") for i in inputs])
    c.compare(f"{prefix}.{outputs[0]}", c.r[f"{prefix}.{outputs[0]}"], y)
    y.backward(c.r[f"{prefix}.{upstream}"].float())
    for leaf, name in zip(leaves, outputs[1:]):
        if name is not None:
            c.compare(f"{prefix}.{name}", c.r[f"{prefix}.{name}"], leaf.grad)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope_ref(x, positions, theta):
    """HF Llama RoPE in float64 (exact angles; ours are exact too)."""
    dim = x.shape[-1]
    inv = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    ang = positions.double()[:, None] * inv[None, :]
    emb = torch.cat((ang, ang), dim=-1)[:, None, :]
    return x * emb.cos() + rotate_half(x) * emb.sin()


def whisper_sinusoids(length, channels, max_timescale=10000):
    """openai/whisper's `sinusoids`, in float64."""
    inc = math.log(max_timescale) / (channels // 2 - 1)
    inv = torch.exp(-inc * torch.arange(channels // 2, dtype=torch.float64))
    t = torch.arange(length, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cat([torch.sin(t), torch.cos(t)], dim=1)


def run_checks(c):
    r = c.r
    check_layer(c, "linear", F.linear, ["x", "w", "b"], ["y", "dx", "dw", "db"],
                "dy")

    eps = r["layer_norm.eps"]
    check_layer(c, "layer_norm",
                lambda x, w, b: F.layer_norm(x, (x.shape[-1],), w, b, eps),
                ["x", "w", "b"], ["y", "dx", "dw", "db"], "dy")
    eps_rms = r["rms_norm.eps"]
    check_layer(c, "rms_norm",
                lambda x, w: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True)
                                             + eps_rms) * w,
                ["x", "w"], ["y", "dx", "dw"], "dy")

    unary = {"gelu": F.gelu,
             "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
             "relu": F.relu, "silu": F.silu}
    for name, fn in unary.items():
        check_layer(c, name, fn, ["x"], ["y", "dx"], "dy")

    def halves(x):
        return x.chunk(2, dim=-1)
    gated = {"swiglu": lambda x: F.silu(halves(x)[0]) * halves(x)[1],
             "geglu": lambda x: F.gelu(halves(x)[0]) * halves(x)[1],
             "glu": lambda x: F.glu(x, dim=-1)}
    for name, fn in gated.items():
        check_layer(c, name, fn, ["in"], ["out", "din"], "dout")

    pos, theta = r["rope.positions"], r["rope.theta"]
    x = c.t("rope.x", grad=True)
    y = rope_ref(x, pos, theta)
    c.compare("rope.y", r["rope.y"], y)
    y.backward(c.t("rope.dy"))
    c.compare("rope.dx", r["rope.dx"], x.grad)
    table = r["sinusoids.table"]
    c.compare("sinusoids.table", table, whisper_sinusoids(*table.shape))

    ids = r["embedding.ids"]
    check_layer(c, "embedding", lambda t: F.embedding(ids, t), ["table"],
                ["out", "dtable"], "dout")

    logits = c.t("cross_entropy.logits")
    lf = logits.float().requires_grad_(True)
    targets = r["cross_entropy.targets"]
    loss = F.cross_entropy(lf, targets, ignore_index=-100, reduction="sum")
    c.compare("cross_entropy.loss_sum", r["cross_entropy.loss_sum"], loss)
    count = int((targets != -100).sum())
    c.compare("cross_entropy.count", r["cross_entropy.count"], count, tol=0)
    (loss * r["cross_entropy.scale"]).backward()
    c.compare("cross_entropy.dlogits", r["cross_entropy.dlogits"], lf.grad)

    for p in ("conv1d_s1", "conv1d_s2", "conv1d_k4"):
        stride, pad = int(r[f"{p}.stride"]), int(r[f"{p}.padding"])
        # Ours is token-major [frames, channels]; torch wants [1, C, frames].
        check_layer(c, p,
                    lambda x, w, b, s=stride, q=pad: F.conv1d(
                        x.t()[None], w, b, stride=s, padding=q)[0].t(),
                    ["x", "w", "b"], ["y", "dx", "dw", "db"], "dy")
    for p in ("depthwise_k5", "depthwise_k4"):
        check_layer(c, p,
                    lambda x, w, b: F.conv1d(x.t()[None], w, b, padding="same",
                                             groups=x.shape[1])[0].t(),
                    ["x", "w", "b"], ["y", "dx", "dw", "db"], "dy")

    w = r["patch_embed.w"]
    tp, ps = w.shape[2], w.shape[3]
    check_layer(c, "patch_embed",
                lambda img, w, b: F.conv3d(img[None], w, b,
                                           stride=(tp, ps, ps))[0]
                .flatten(1).t(),
                ["image", "w", "b"], ["y", None, "dw", "db"], "dy")

    check_optimizers(c)

    merge = int(r["merge.merge"])
    def merge_ref(x):
        pad = (-x.shape[0]) % merge
        return F.pad(x, (0, 0, 0, pad)).reshape(-1, merge * x.shape[1])
    check_layer(c, "merge", merge_ref, ["x"], ["y", "dx"], "dy")


def check_optimizers(c):
    r = c.r
    lr, wd = r["optim.lr"], r["optim.weight_decay"]
    betas = (r["optim.beta1"], r["optim.beta2"])
    grads = r["optim.grads"]
    makers = {
        "adamw": lambda p: torch.optim.AdamW([p], lr=lr, betas=betas,
                                             eps=r["optim.eps"],
                                             weight_decay=wd, foreach=False),
        "adam": lambda p: torch.optim.Adam([p], lr=lr, betas=betas,
                                           eps=r["optim.eps"], weight_decay=wd,
                                           foreach=False),
        "sgd": lambda p: torch.optim.SGD([p], lr=lr, weight_decay=wd,
                                         foreach=False),
    }
    for name, make in makers.items():
        p = r["optim.param"].clone().requires_grad_(True)
        opt = make(p)
        for g in grads:
            p.grad = g.clone()
            opt.step()
        c.compare(f"{name}.param", r[f"{name}.param"], p.detach(), OPTIM_TOL)
        if name != "sgd":
            state = opt.state[p]
            c.compare(f"{name}.exp_avg", r[f"{name}.exp_avg"],
                      state["exp_avg"], OPTIM_TOL)
            c.compare(f"{name}.exp_avg_sq", r[f"{name}.exp_avg_sq"],
                      state["exp_avg_sq"], OPTIM_TOL)


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    driver, out = sys.argv[1], sys.argv[2]
    subprocess.run([driver, out], check=True)
    torch.set_num_threads(1)
    c = Checker(read_records(out))
    run_checks(c)
    print(f"{c.checked} comparisons, {len(c.failures)} failures "
          f"(torch {torch.__version__})")
    for f in c.failures:
        print("FAILED:", f)
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
