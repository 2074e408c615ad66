"""A whole model of a plan in PyTorch: the independent reference of mllm-run.

Built from the plan file alone (docs/plan-format.md) with the layer modules
of torch_layers.py, in the runtime's order and with its parameter names
(PART.GROUP[.INDEX].PARAM): every encoder's layers (the attention-pooling
head is not on the way to the LLM and is left out, as the runtime does), its
class token dropped and `merge` neighbouring tokens concatenated before its
projector, the LLM's token embedding with the encoders' tokens put at their
rows, its blocks, final norm and LM head with the loss. The data, the
sequence's mask and the fan-in rows come from `mllm-run --dump-batches`.
"""

import json
import struct

import torch
import torch.nn.functional as F

import torch_layers as L

# Debian's torch 1.13 computes conv1d weight gradients through oneDNN
# (mkldnn) wrongly on this project's CPUs: garbage values that change from
# run to run for the audio front end's convolutions (float32). The native
# kernels are exact; the reference uses them.
torch.backends.mkldnn.enabled = False


def load_safetensors(path):
    """{name: tensor} and the metadata of a safetensors file."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    dtypes = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        raw = bytearray(data[8 + n + begin:8 + n + end])
        t = torch.frombuffer(raw, dtype=dtypes[info["dtype"]]) if raw else \
            torch.zeros(0, dtype=dtypes[info["dtype"]])
        out[name] = t.reshape(info["shape"]).clone()
    return out, meta


def layer_name(part, group, index):
    if group["count"] > 1:
        return "%s.%s.%d" % (part, group["name"], index)
    return "%s.%s" % (part, group["name"])


class Layer:
    """One layer of the plan: its module, full name and frozen status."""

    def __init__(self, part, group, index):
        self.name = layer_name(part, group, index)
        self.kind = group["kind"]
        self.module = L.make_layer(group["kind"], group["config"])
        self.trains = group["weight_grad"]


class Encoder:
    def __init__(self, part, data_input, microbatch_size, packing):
        self.name = part["name"]
        self.layers = []
        groups = [g for g in part["groups"] if g["kind"] != "attention_pool"]
        for g in groups:
            for i in range(g["count"]):
                self.layers.append(Layer(part["name"], g, i))
        first = part["groups"][0]
        self.input_kind = first["kind"]
        self.config = first["config"]
        self.class_token = self.config.get("class_token", False)
        proj = part["projector"]
        self.merge = proj["merge"]
        self.projector = []
        for g in proj["groups"]:
            for i in range(g["count"]):
                self.projector.append(Layer(proj["name"], g, i))
        self.items = microbatch_size * packing * data_input["items"]
        self.llm_tokens = data_input["tokens"]
        self.width = part["width"]

    def media_shape(self, numel):
        c = self.config
        if self.input_kind == "patch_embedding":
            per = (c.get("channels", 0), c.get("temporal_patch", 1),
                   c["image_height"], c["image_width"])
        else:
            per = (c["frames"], c["mel_bins"])
        each = 1
        for d in per:
            each *= d
        return (numel // each,) + per

    def forward(self, media):
        media = media.reshape(self.media_shape(media.numel()))
        sequences = media.shape[0]
        x = None
        for layer in self.layers:
            tokens = 0 if x is None else x.shape[0] // sequences
            batch = L.Batch(sequences=sequences, tokens=tokens, media=media)
            x = layer.module(x, batch)
        # Per item: its windows' tokens in order, the class token dropped,
        # padded to whole merge groups and merged.
        per_item = x.shape[0] // self.items
        x = x.reshape(self.items, per_item, self.width)
        if self.class_token:
            x = x[:, 1:]
        kept = x.shape[1]
        groups = (kept + self.merge - 1) // self.merge
        pad = groups * self.merge - kept
        if pad:
            x = torch.cat([x, x.new_zeros(self.items, pad, self.width)], 1)
        x = x.reshape(self.items * groups, self.merge * self.width)
        for layer in self.projector:
            x = layer.module(x, L.Batch(sequences=self.items, tokens=groups))
        return x


class LLM:
    def __init__(self, part):
        self.name = part["name"]
        self.layers = []
        for g in part["groups"]:
            for i in range(g["count"]):
                self.layers.append(Layer(part["name"], g, i))
        embeds = [l for l in self.layers if l.kind == "token_embedding"]
        for l in self.layers:
            if l.kind == "lm_head" and l.module.tied:
                l.module.bind_tied_weight(embeds[0].module.weight)


class Model:
    def __init__(self, plan):
        d = plan["data"]
        self.sequences = d["microbatch_size"]
        self.seq_len = d["seq_len"]
        inputs = {i["encoder"]: i for i in d["inputs"]}
        self.encoders = [Encoder(p, inputs[p["name"]], d["microbatch_size"],
                                 d["packing"])
                         for p in plan["parts"] if p["kind"] == "encoder"]
        self.llm = LLM(plan["parts"][-1])

    def all_layers(self):
        for e in self.encoders:
            yield from e.layers
            yield from e.projector
        yield from self.llm.layers

    def parameters(self):
        """(full name, tensor, trains) for every parameter and buffer."""
        out = []
        for layer in self.all_layers():
            for name, p in layer.module.named_parameters():
                out.append((layer.name + "." + name, p, layer.trains))
            for name, b in layer.module.named_buffers():
                out.append((layer.name + "." + name, b, False))
        return out

    def load(self, tensors):
        with torch.no_grad():
            for name, p, _ in self.parameters():
                p.copy_(tensors["model." + name].to(p.dtype))

    def loss(self, batches, key, layout, fan_in):
        """The scaled loss of microbatch `key` of the dump."""
        S, T = self.sequences, self.seq_len
        enc_out = {}
        for e in self.encoders:
            enc_out[e.name] = e.forward(batches[key + ".media." + e.name])
        scale = float(batches[key + ".loss_scale"][0])
        ids = batches[key + ".token_ids"]
        targets = batches[key + ".targets"]
        x = None
        for layer in self.llm.layers:
            batch = L.Batch(sequences=S, tokens=T, words=layout["words"],
                            segments=layout["segments"],
                            positions=layout["positions"], token_ids=ids,
                            targets=targets, loss_scale=scale)
            if layer.kind in ("token_embedding",):
                x = layer.module(None, batch)
                if self.encoders:
                    x = x.reshape(S, T, -1).clone()
                    for e in self.encoders:
                        # Rows of the encoder's tokens in media order; -1:
                        # a padding item the batch does not have.
                        rows = fan_in[e.name]
                        out = enc_out[e.name].reshape(S, -1, x.shape[-1])
                        have = rows >= 0
                        x[:, rows[have]] = out[:, :len(rows)][:, have]
                    x = x.reshape(S * T, -1)
                continue
            if layer.kind == "norm" or layer.kind == "lm_head":
                batch.words = None
            x = layer.module(x, batch)
        return x.reshape(())


def train(plan, init, batches, steps, on_step=None):
    """Losses of `steps` steps of the plan's optimizer over the dumped
    batches, and the model after them."""
    model = Model(plan)
    model.load(init)
    params = [p for _, p, trains in model.parameters() if trains]
    for _, p, trains in model.parameters():
        p.requires_grad_(trains)
    t = plan["train"]
    if t["optimizer"] == "adamw":
        opt = torch.optim.AdamW(params, lr=t["lr"],
                                weight_decay=t["weight_decay"])
    elif t["optimizer"] == "adam":
        opt = torch.optim.Adam(params, lr=t["lr"],
                               weight_decay=t["weight_decay"])
    else:
        opt = torch.optim.SGD(params, lr=t["lr"],
                              weight_decay=t["weight_decay"])
    layout = {"words": batches["layout.words"],
              "segments": batches["layout.segments"],
              "positions": batches["layout.positions"]}
    fan_in = {e.name: batches["fan_in." + e.name] for e in model.encoders}
    dp = plan["job"]["dp"]
    microbatches = plan["data"]["microbatches"]
    losses = []
    for step in range(steps):
        opt.zero_grad()
        total = 0.0
        for d in range(dp):
            for mb in range(microbatches):
                key = "s%d.d%d.m%d" % (step, d, mb)
                # Real data: each microbatch has its own layout.
                own, own_fan_in = layout, fan_in
                if key + ".layout.words" in batches:
                    own = {k: batches["%s.layout.%s" % (key, k)]
                           for k in ("words", "segments", "positions")}
                    own_fan_in = {e.name: batches[key + ".fan_in." + e.name]
                                  for e in model.encoders}
                loss = model.loss(batches, key, own, own_fan_in)
                loss.backward()
                total += float(loss.detach())
        opt.step()
        losses.append(total)
        if on_step:
            on_step()
    return losses, model
