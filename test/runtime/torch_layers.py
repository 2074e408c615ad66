"""PyTorch mirror of the CPU runtime's layers (docs/runtime-layers.md).

One torch.nn.Module per layer kind of a plan, with the runtime's parameter
names (state_dict keys equal Param::name), built from a dict of LayerConfig
keys spelled as in runtime/lib/Plan/LayerConfig.cpp. Every module computes
what the C++ layer computes, in whatever dtype its parameters and inputs
have: the reference for the per-layer cross-check and for whole-model tests.

Conventions, as in the runtime:
  * activations are 2-D and token-major: [sequences * tokens, features];
  * every forward takes (x, batch); input layers ignore x and read
    batch.token_ids / batch.media, the LM head reads batch.targets and
    returns the scaled loss sum as a [1] tensor;
  * masks come from the bitfield words/segments of one sequence, shared by
    all sequences of the batch (attend_mask ports kernels' attend()).

Torch 1.13 (Debian's /usr/bin/python3) has no scaled_dot_product_attention,
so attention is written out with an explicit boolean mask.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

NORM_EPS = 1e-5
IGNORE_INDEX = -100

# kernels/include/mllm/kernels/Bitfield.h
TEXT_BIT = 1
CAUSAL_BIT = 1 << 62
VISIBILITY_MASK = CAUSAL_BIT - 1
ITEM_BITS = 12
MAX_ITEM = (1 << ITEM_BITS) - 1
SINK_FLAG = 1 << 31
SEGMENT_ID_MASK = SINK_FLAG - 1


class Batch:
    """What a layer call knows about the microbatch (runtime Batch<T>)."""

    def __init__(self, sequences=1, tokens=0, words=None, segments=None,
                 policy="mllm", window=0, positions=None, token_ids=None,
                 media=None, targets=None, loss_scale=1.0):
        self.sequences = sequences
        self.tokens = tokens
        self.words = words          # LongTensor [tokens] or None (all visible)
        self.segments = segments    # LongTensor [tokens] or None (all 0)
        self.policy = policy        # "mllm" or "cornstarch"
        self.window = window
        self.positions = positions  # LongTensor [tokens] or None (0..T-1)
        self.token_ids = token_ids  # LongTensor [sequences * tokens]
        self.media = media
        self.targets = targets      # LongTensor [sequences * tokens]
        self.loss_scale = loss_scale

    def position_ids(self):
        if self.positions is None:
            return torch.arange(self.tokens)
        return self.positions


def attend_mask(words, segments=None, policy="mllm", window=0):
    """Dense [T, T] mask, True where query q may attend to key k: the
    attend() predicate of Bitfield.h over global positions = indices."""
    n = words.shape[0]
    if segments is None:
        segments = torch.zeros(n, dtype=torch.long)
    pos = torch.arange(n)
    qw, kw = words[:, None], words[None, :]
    qs, ks = segments[:, None], segments[None, :]
    qp, kp = pos[:, None], pos[None, :]
    qbits, kbits = qw & VISIBILITY_MASK, kw & VISIBILITY_MASK
    if policy == "cornstarch":
        text = (qbits & TEXT_BIT) != 0
        return torch.where(text, (kp <= qp) & ((qbits & kbits) != 0),
                           (qbits == kbits) & (qbits != 0))
    share = (qbits & kbits) != 0
    same_sample = ((qs & SEGMENT_ID_MASK) >> ITEM_BITS) == \
        ((ks & SEGMENT_ID_MASK) >> ITEM_BITS)
    same_item = (qs & SEGMENT_ID_MASK) == (ks & SEGMENT_ID_MASK)
    q_text = (qbits & TEXT_BIT) != 0
    k_text = (kbits & TEXT_BIT) != 0
    q_causal = (qw & CAUSAL_BIT) != 0
    modality = same_item & ~k_text & (~q_causal | (kp <= qp))
    q_item, k_item = qs & MAX_ITEM, ks & MAX_ITEM
    bidirectional = same_item & (q_item != 0) & ~q_causal
    in_window = torch.ones_like(share)
    if window > 0:
        in_window = ((qp - kp) < window) | ((ks & SINK_FLAG) != 0)
    private = (q_item == 0) | (k_item == 0) | same_item | ~k_text
    text = bidirectional | ((kp <= qp) & in_window & private)
    return share & same_sample & torch.where(q_text, text, modality)


def alibi_slopes(heads):
    """Press et al.'s slopes, rounded to float32 as the kernel takes them."""
    def power_of_two(n):
        return [2.0 ** (-8.0 * (i + 1) / n) for i in range(n)]
    closest = 1
    while closest * 2 <= heads:
        closest *= 2
    slopes = power_of_two(closest)
    slopes += power_of_two(2 * closest)[0::2][:heads - closest]
    return torch.tensor(slopes, dtype=torch.float32)


def rope(x, positions, theta):
    """Rotate-half RoPE on x [T, H, d]; angles in double, as the kernel."""
    d = x.shape[-1]
    h = d // 2
    inv = torch.tensor([theta ** (-2.0 * i / d) for i in range(h)],
                       dtype=torch.float64)
    a = positions.to(torch.float64)[:, None] * inv[None, :]
    cos = a.cos().to(x.dtype)[:, None, :]
    sin = a.sin().to(x.dtype)[:, None, :]
    x1, x2 = x[..., :h], x[..., h:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def attention(q, k, v, mask=None, slopes=None, positions=None):
    """Softmax attention of one sequence: q [Tq, H, d], k/v [Tk, KV, d]
    (query head h reads kv head h // (H / KV)), scale 1/sqrt(d), an optional
    ALiBi bias slope_h * (pos_k - pos_q), a boolean mask [Tq, Tk]. A query
    with no visible key gets a zero output (the kernel's convention)."""
    heads, kv_heads, d = q.shape[1], k.shape[1], q.shape[2]
    k = k.repeat_interleave(heads // kv_heads, dim=1)
    v = v.repeat_interleave(heads // kv_heads, dim=1)
    s = torch.einsum("qhd,khd->hqk", q, k) * (1.0 / math.sqrt(d))
    if slopes is not None:
        dist = (positions[None, :] - positions[:, None]).to(q.dtype)
        s = s + slopes.to(q.dtype)[:, None, None] * dist[None]
    if mask is not None:
        visible = mask.any(dim=-1, keepdim=True)[None]
        s = s.masked_fill(~mask[None], float("-inf"))
        s = torch.where(visible, s, torch.zeros_like(s))
        p = torch.softmax(s, dim=-1) * mask[None].to(q.dtype)
    else:
        p = torch.softmax(s, dim=-1)
    return torch.einsum("hqk,khd->qhd", p, v)


def sinusoids(length, channels, max_timescale=10000.0):
    """Whisper's encoder table (sin | cos halves), in double."""
    h = channels // 2
    inc = math.log(max_timescale) / (h - 1)
    inv = torch.exp(-inc * torch.arange(h, dtype=torch.float64))
    t = torch.arange(length, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cat([t.sin(), t.cos()], dim=1)


def activation(name, x):
    if name == "gelu":
        return F.gelu(x)
    if name == "gelu_tanh":
        return F.gelu(x, approximate="tanh")
    if name == "relu":
        return F.relu(x)
    if name == "silu":
        return F.silu(x)
    if name in ("swiglu", "geglu"):
        gate, up = x.chunk(2, dim=-1)
        return (F.silu(gate) if name == "swiglu" else F.gelu(gate)) * up
    raise ValueError("unknown activation '%s'" % name)


# Parameters carry how initParam fills them ("normal", "ones", "zeros",
# "fixed"), for init_module.
def _param(shape, init):
    p = nn.Parameter(torch.zeros(*shape))
    p.mllm_init = init
    return p


class Affine(nn.Module):
    """A `weight` (normal init) and an optional `bias` (zeros)."""

    def __init__(self, shape, bias):
        super().__init__()
        self.weight = _param(shape, "normal")
        self.bias = _param((shape[0],), "zeros") if bias else None


class Norm(nn.Module):
    """LayerNorm (weight, bias) or RMSNorm (weight), eps 1e-5."""

    def __init__(self, hidden, layer_norm):
        super().__init__()
        self.layer_norm = layer_norm
        self.weight = _param((hidden,), "ones")
        self.bias = _param((hidden,), "zeros") if layer_norm else None

    def forward(self, x, batch=None):
        if self.layer_norm:
            return F.layer_norm(x, x.shape[-1:], self.weight, self.bias,
                                NORM_EPS)
        rstd = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + NORM_EPS)
        return x * rstd * self.weight


class FeedForward(nn.Module):
    """w_out act(w_in x + b_in) + b_out; gated: w_in is [gate | up]."""

    def __init__(self, hidden, ffn, act, bias):
        super().__init__()
        self.act = act
        width = 2 * ffn if act in ("swiglu", "geglu") else ffn
        self.w_in = _param((width, hidden), "normal")
        self.b_in = _param((width,), "zeros") if bias else None
        self.w_out = _param((hidden, ffn), "normal")
        self.b_out = _param((hidden,), "zeros") if bias else None

    def forward(self, x):
        u = F.linear(x, self.w_in, self.b_in)
        return F.linear(activation(self.act, u), self.w_out, self.b_out)


def _cfg(c, key, default=0):
    return c.get(key, default)


class SelfAttention:
    """Not a module of its own in the names: the block registers wq...bo on
    itself; this helper holds the geometry and runs the attention."""

    def __init__(self, c):
        self.heads = _cfg(c, "heads")
        self.kv_heads = _cfg(c, "kv_heads")
        self.head_dim = _cfg(c, "head_dim")
        self.position = _cfg(c, "position", "")
        self.theta = float(_cfg(c, "rope_theta", 0.0))

    @staticmethod
    def add_params(m, c):
        h, hd = _cfg(c, "hidden"), _cfg(c, "head_dim")
        q, kv = _cfg(c, "heads") * hd, _cfg(c, "kv_heads") * hd
        qkv_bias = _cfg(c, "qkv_bias", False)
        m.wq = _param((q, h), "normal")
        m.wk = _param((kv, h), "normal")
        m.wv = _param((kv, h), "normal")
        m.wo = _param((h, q), "normal")
        m.bq = _param((q,), "zeros") if qkv_bias else None
        m.bk = _param((kv,), "zeros") if qkv_bias else None
        m.bv = _param((kv,), "zeros") if qkv_bias else None
        m.bo = _param((h,), "zeros") if _cfg(c, "bias", False) else None

    def run(self, m, x, batch):
        S, T = batch.sequences, batch.tokens
        H, KV, d = self.heads, self.kv_heads, self.head_dim
        q = F.linear(x, m.wq, m.bq).view(S, T, H, d)
        k = F.linear(x, m.wk, m.bk).view(S, T, KV, d)
        v = F.linear(x, m.wv, m.bv).view(S, T, KV, d)
        pos = batch.position_ids()
        mask = None
        if batch.words is not None:
            mask = attend_mask(batch.words, batch.segments, batch.policy,
                               batch.window)
        slopes = alibi_slopes(H) if self.position == "alibi" else None
        outs = []
        for s in range(S):
            qs, ks = q[s], k[s]
            if self.position == "rope":
                qs, ks = rope(qs, pos, self.theta), rope(ks, pos, self.theta)
            outs.append(attention(qs, ks, v[s], mask, slopes, pos))
        o = torch.stack(outs).reshape(S * T, H * d)
        return F.linear(o, m.wo, m.bo)


class TransformerBlock(nn.Module):
    """h = x + Attn(Norm1(x)); y = h + FFN(Norm2(h))."""

    def __init__(self, c):
        super().__init__()
        h, ln = _cfg(c, "hidden"), _cfg(c, "layer_norm", False)
        self.norm1 = Norm(h, ln)
        SelfAttention.add_params(self, c)
        self.norm2 = Norm(h, ln)
        self.ffn = FeedForward(h, _cfg(c, "ffn"), c["activation"],
                               _cfg(c, "bias", False))
        self.attn = SelfAttention(c)

    def forward(self, x, batch):
        h = x + self.attn.run(self, self.norm1(x), batch)
        return h + self.ffn(self.norm2(h))


class ConvModule(nn.Module):
    """pw1 (h -> 2h), GLU, depthwise 'same' conv, LayerNorm over channels
    (in place of BatchNorm), SiLU, pw2 (h -> h)."""

    def __init__(self, c):
        super().__init__()
        h, bias = _cfg(c, "hidden"), _cfg(c, "bias", False)
        self.pw1 = Affine((2 * h, h), bias)
        self.dw = Affine((h, 1, _cfg(c, "conv_kernel")), bias)
        self.norm = Norm(h, True)
        self.pw2 = Affine((h, h), bias)

    def forward(self, x, batch):
        S, T = batch.sequences, batch.tokens
        h = x.shape[-1]
        g = F.glu(F.linear(x, self.pw1.weight, self.pw1.bias), dim=-1)
        g = g.view(S, T, h).transpose(1, 2)
        # PyTorch's padding='same': (k - 1) // 2 zeros left, the rest right.
        k = self.dw.weight.shape[-1]
        g = F.pad(g, ((k - 1) // 2, (k - 1) - (k - 1) // 2))
        d = F.conv1d(g, self.dw.weight, self.dw.bias, groups=h)
        d = d.transpose(1, 2).reshape(S * T, h)
        return F.linear(F.silu(self.norm(d)), self.pw2.weight, self.pw2.bias)


class ConformerBlock(nn.Module):
    """x + FFN1/2, + MHSA, + Conv, + FFN2/2, final norm (pre-norm each)."""

    def __init__(self, c):
        super().__init__()
        h, ln = _cfg(c, "hidden"), _cfg(c, "layer_norm", False)
        f, act, bias = _cfg(c, "ffn"), c["activation"], _cfg(c, "bias", False)
        self.ffn1_norm = Norm(h, ln)
        self.ffn1 = FeedForward(h, f, act, bias)
        self.attn_norm = Norm(h, ln)
        SelfAttention.add_params(self, c)
        self.conv_norm = Norm(h, ln)
        self.conv = ConvModule(c)
        self.ffn2_norm = Norm(h, ln)
        self.ffn2 = FeedForward(h, f, act, bias)
        self.final_norm = Norm(h, ln)
        self.attn = SelfAttention(c)

    def forward(self, x, batch):
        x = x + 0.5 * self.ffn1(self.ffn1_norm(x))
        x = x + self.attn.run(self, self.attn_norm(x), batch)
        x = x + self.conv(self.conv_norm(x), batch)
        x = x + 0.5 * self.ffn2(self.ffn2_norm(x))
        return self.final_norm(x)


class TokenEmbedding(nn.Module):
    def __init__(self, c):
        super().__init__()
        h = _cfg(c, "hidden")
        self.weight = _param((_cfg(c, "vocab"), h), "normal")
        self.pos_weight = None
        if _cfg(c, "position", "") == "learned":
            self.pos_weight = _param((_cfg(c, "positions"), h), "normal")

    def forward(self, x, batch):
        out = F.embedding(batch.token_ids, self.weight)
        if self.pos_weight is not None:
            pos = batch.position_ids().repeat(batch.sequences)
            out = out + F.embedding(pos, self.pos_weight)
        return out


class PatchEmbedding(nn.Module):
    """media [items, C, tp, H, W] -> Conv3d with stride = kernel (pixels
    past the last whole patch dropped) -> row-major patches, a class token
    first, + learned positions."""

    def __init__(self, c):
        super().__init__()
        h, p = _cfg(c, "hidden"), _cfg(c, "patch")
        tp = _cfg(c, "temporal_patch", 1)
        self.patch, self.tp = p, tp
        self.weight = _param((h, _cfg(c, "channels"), tp, p, p), "normal")
        self.bias = _param((h,), "zeros") if _cfg(c, "bias", False) else None
        self.class_token = None
        if _cfg(c, "class_token", False):
            self.class_token = _param((h,), "normal")
        self.pos_weight = None
        if _cfg(c, "position", "") == "learned":
            self.pos_weight = _param((_cfg(c, "positions"), h), "normal")

    def forward(self, x, batch):
        y = F.conv3d(batch.media, self.weight, self.bias,
                     stride=(self.tp, self.patch, self.patch))
        y = y.flatten(2).transpose(1, 2)  # [items, patches, hidden]
        if self.class_token is not None:
            cls = self.class_token.view(1, 1, -1).expand(y.shape[0], 1, -1)
            y = torch.cat([cls, y], dim=1)
        if self.pos_weight is not None:
            y = y + self.pos_weight[None]
        return y.reshape(-1, y.shape[-1])


class AudioFrontend(nn.Module):
    """log-mel [items, frames, mel] -> conv1d k3 s1 p1 -> GELU -> conv1d k3
    s2 p1 -> GELU -> + positions (sinusoidal: a fixed buffer)."""

    def __init__(self, c):
        super().__init__()
        h, mel = _cfg(c, "hidden"), _cfg(c, "mel_bins")
        self.conv1 = Affine((h, mel, 3), True)
        self.conv2 = Affine((h, h, 3), True)
        pos = _cfg(c, "position", "")
        if pos == "learned":
            self.pos_weight = _param((_cfg(c, "positions"), h), "normal")
        elif pos == "sinusoidal":
            # A constant of the layer, stored like Whisper's: a buffer.
            self.register_buffer("pos_weight",
                                 sinusoids(_cfg(c, "positions"), h).float())
        else:
            self.pos_weight = None

    def forward(self, x, batch):
        m = batch.media.transpose(1, 2)
        y = F.gelu(F.conv1d(m, self.conv1.weight, self.conv1.bias, padding=1))
        y = F.gelu(F.conv1d(y, self.conv2.weight, self.conv2.bias, stride=2,
                            padding=1))
        y = y.transpose(1, 2)
        if self.pos_weight is not None:
            y = y + self.pos_weight[:y.shape[1]].to(y.dtype)[None]
        return y.reshape(-1, y.shape[-1])


class NormLayer(Norm):
    def __init__(self, c):
        super().__init__(_cfg(c, "hidden"), _cfg(c, "layer_norm", False))


class LMHead(nn.Module):
    """sum cross-entropy(x W^T, targets) * loss_scale, as a [1] tensor."""

    def __init__(self, c):
        super().__init__()
        self.tied = _cfg(c, "tied", False)
        self.weight = None
        if not self.tied:
            self.weight = _param((_cfg(c, "vocab"), _cfg(c, "hidden")),
                                 "normal")
        self._bound = []

    def bind_tied_weight(self, weight):
        """The token embedding's weight (kept out of this module's params)."""
        self._bound = [weight]

    def forward(self, x, batch):
        w = self._bound[0] if self.tied else self.weight
        logits = F.linear(x, w)
        loss = F.cross_entropy(logits, batch.targets,
                               ignore_index=IGNORE_INDEX, reduction="sum")
        return (loss * batch.loss_scale).reshape(1)


class LinearProjector(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.weight = _param((_cfg(c, "out"), _cfg(c, "in")), "normal")
        self.bias = _param((_cfg(c, "out"),), "zeros")

    def forward(self, x, batch=None):
        return F.linear(x, self.weight, self.bias)


class MlpProjector(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.act = c["activation"]
        self.fc1 = Affine((_cfg(c, "hidden"), _cfg(c, "in")), True)
        self.fc2 = Affine((_cfg(c, "out"), _cfg(c, "hidden")), True)

    def forward(self, x, batch=None):
        u = F.linear(x, self.fc1.weight, self.fc1.bias)
        return F.linear(activation(self.act, u), self.fc2.weight,
                        self.fc2.bias)


class PoolMlp(nn.Module):
    def __init__(self, h, f):
        super().__init__()
        self.fc1 = Affine((f, h), True)
        self.fc2 = Affine((h, f), True)

    def forward(self, x):
        u = F.linear(x, self.fc1.weight, self.fc1.bias)
        return F.linear(activation("gelu_tanh", u), self.fc2.weight,
                        self.fc2.bias)


class AttentionPool(nn.Module):
    """SigLIP's MAP head: a probe attends over the item's tokens, then
    y = a + MLP(LayerNorm(a)); one token per item."""

    def __init__(self, c):
        super().__init__()
        h, f = _cfg(c, "hidden"), _cfg(c, "ffn")
        self.heads = _cfg(c, "heads")
        self.probe = _param((1, h), "normal")
        for name in ("q", "k", "v", "o"):
            setattr(self, "w" + name, _param((h, h), "normal"))
            setattr(self, "b" + name, _param((h,), "zeros"))
        self.norm = Norm(h, True)
        self.mlp = PoolMlp(h, f)

    def forward(self, x, batch):
        S, T, h = batch.sequences, batch.tokens, x.shape[-1]
        H = self.heads
        d = h // H
        q = F.linear(self.probe, self.wq, self.bq).view(1, H, d)
        k = F.linear(x, self.wk, self.bk).view(S, T, H, d)
        v = F.linear(x, self.wv, self.bv).view(S, T, H, d)
        o = torch.stack([attention(q, k[s], v[s]) for s in range(S)])
        a = F.linear(o.reshape(S, h), self.wo, self.bo)
        return a + self.mlp(self.norm(a))


KINDS = {
    "token_embedding": TokenEmbedding,
    "patch_embedding": PatchEmbedding,
    "audio_frontend": AudioFrontend,
    "transformer_block": TransformerBlock,
    "conformer_block": ConformerBlock,
    "norm": NormLayer,
    "lm_head": LMHead,
    "linear": LinearProjector,
    "mlp": MlpProjector,
    "attention_pool": AttentionPool,
}


def make_layer(kind, config):
    """The module of `kind` from a dict of LayerConfig keys (missing keys
    take their defaults). Parameters are zeros until loaded or initialised
    with init_module."""
    if kind not in KINDS:
        raise ValueError("unknown layer kind '%s'" % kind)
    return KINDS[kind](config)


# initParam (runtime/lib/CPU/Init.cpp): SplitMix64 keyed by (seed, FNV-1a of
# the full name), two draws per element, Box-Muller, std 0.02, in double.
_MASK = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15


def _splitmix64(x):
    z = (x + _GAMMA) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def _fnv1a64(name):
    h = 0xCBF29CE484222325
    for byte in name.encode():
        h = ((h ^ byte) * 0x100000001B3) & _MASK
    return h


def init_values(full_name, numel, seed):
    """The float64 values initParam draws for a normal(0, 0.02) parameter."""
    key = _splitmix64((seed ^ _splitmix64(_fnv1a64(full_name))) & _MASK)
    out = []
    for i in range(numel):
        r1 = _splitmix64((key + 2 * i * _GAMMA) & _MASK)
        r2 = _splitmix64((key + (2 * i + 1) * _GAMMA) & _MASK)
        u1 = float((r1 >> 11) + 1) * (1.0 / 9007199254740992.0)
        u2 = float(r2 >> 11) * (1.0 / 9007199254740992.0)
        z = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
        out.append(0.02 * z)
    return torch.tensor(out, dtype=torch.float64)


def init_module(module, prefix, seed):
    """initParam for every parameter of `module`, named prefix + name (the
    runtime's full name, e.g. "llm.blocks.3."). Fixed buffers stay."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            kind = getattr(p, "mllm_init", "normal")
            if kind == "ones":
                p.fill_(1)
            elif kind == "zeros":
                p.zero_()
            else:
                vals = init_values(prefix + name, p.numel(), seed)
                p.copy_(vals.view(p.shape).to(p.dtype))
