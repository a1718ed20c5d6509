#!/usr/bin/python3
"""Write the PyTorch reference fixtures that dngen's generated trainers are tested against.

For every case this writes, into the output directory (default tests/fixtures):

  <case>.yaml          the dngen spec of the network
  <case>.safetensors   PyTorch's numbers for that network:
      init.<param>     initial weights (torch.manual_seed + nn.Linear / nn.Conv2d default
                       init), PyTorch state_dict names and layouts (W [out, in], b [out];
                       conv W [filters, c, kh, kw]); batch norm as
                       <layer>_bn.weight/bias/running_mean/running_var
      x [n, in] F32 ([n, c, h, w] for an image input), y [n] I64 (multi-label cases:
                       t [n, K] F32, the 0/1 target of each output instead)
      eval.logits      [n, out] pre-activation output of the last layer (after its batch
                       norm, if any), eval mode: dropout off, batch norm on running stats
      eval.loss        [] mean loss over the batch, dropout off
      mask.<slot>      [n, units] F32 0/1: dngen's dropout keep masks (mask.input for
                       input dropout, mask.<layer name> for a layer's dropout); an image
                       layer's is [n, c, h, w], or [n, c] in channel mode
      train.logits, train.loss, grad.<param>
                       train mode with exactly those masks; gradients of the mean loss
      adam10.<param>   weights after 10 optimizer steps on the same batch, dropout off
                       (batch norm running statistics too: they moved 10 times)
      adam10.loss      [10] the loss before each of the 10 steps
      adam10.eval.logits
                       (batch norm cases) eval-mode logits after the 10 steps
      metadata         case, seed (dngen seed of the masks), step (optimizer step of the
                       masks), torch_version, torch_seed

dngen's dropout masks are reproduced bit-exactly here. Every random word dngen uses is
(runtime/dn_runtime.h, dn_rand_u32):

    word(seed, domain, a, b, c, i) = philox4x32_10(
        ctr = [i >> 2, a, b, (domain << 24) | (c & 0xffffff)],
        key = [seed & 0xffffffff, seed >> 32])[i & 3]

For dropout, domain = 1 (DN_RNG_DROPOUT), a = row in the batch, b = optimizer step,
c = slot (0 = input dropout, 1 + k = dropout after layer k, k 0-based over every spec
layer, pools and flatten included), i = unit. A unit is dropped iff
word < uint32(p * 4294967296.0); survivors are scaled by 1/(1-p), applied here as
`h = h * mask / (1 - p)` after the activation (on x for the input slot). The units of a
dense layer and of the input are its features in order (an image input's flat [c, h, w]
elements); on an image layer [c, h, w] the element at (c, y, x) is unit
c * plane4 + y * w + x with plane4 = h * w rounded up to a multiple of 4, and in
channel mode unit c decides the whole channel c.

The Philox implementation is checked against Random123's known-answer vectors before
anything is written.

Only needed to regenerate the fixtures; the build and CI never run it. Run with Debian's
PyTorch:

    /usr/bin/python3 tools/torch_reference.py            # from the repository root
"""

import argparse
import json
import math
import os
import sys
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ---- Philox4x32-10 and dngen's random streams --------------------------------------------

PHILOX_M0 = 0xD2511F53
PHILOX_M1 = 0xCD9E8D57
PHILOX_W0 = 0x9E3779B9
PHILOX_W1 = 0xBB67AE85
MASK32 = 0xFFFFFFFF

DN_RNG_DROPOUT = 1
DN_RNG_NOISE = 5

DEFAULT_KAT = "/work/shared/reference/random123-kat_vectors.txt"

# The three philox4x32 10 lines of Random123's tests/kat_vectors (D. E. Shaw Research,
# BSD-3-Clause), used when the vector file is not available.
BUILTIN_KAT = [
    ([0x00000000, 0x00000000, 0x00000000, 0x00000000], [0x00000000, 0x00000000],
     [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
    ([0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF], [0xFFFFFFFF, 0xFFFFFFFF],
     [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
    ([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], [0xA4093822, 0x299F31D0],
     [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]),
]


def philox4x32_10(c0, c1, c2, c3, k0, k1):
    """Philox4x32 with 10 rounds, elementwise over numpy arrays.

    c0..c3: counter words (anything broadcastable to uint32 arrays); k0, k1: key words
    (Python ints). Returns the four output words as uint32 arrays.
    """
    c0, c1, c2, c3 = (np.asarray(c, dtype=np.uint32) for c in (c0, c1, c2, c3))
    c0, c1, c2, c3 = np.broadcast_arrays(c0, c1, c2, c3)
    k0 &= MASK32
    k1 &= MASK32
    for _ in range(10):
        p0 = np.uint64(PHILOX_M0) * c0.astype(np.uint64)
        p1 = np.uint64(PHILOX_M1) * c2.astype(np.uint64)
        hi0 = (p0 >> np.uint64(32)).astype(np.uint32)
        lo0 = p0.astype(np.uint32)  # keeps the low 32 bits
        hi1 = (p1 >> np.uint64(32)).astype(np.uint32)
        lo1 = p1.astype(np.uint32)
        c0, c1, c2, c3 = (hi1 ^ c1 ^ np.uint32(k0), lo1,
                          hi0 ^ c3 ^ np.uint32(k1), lo0)
        k0 = (k0 + PHILOX_W0) & MASK32
        k1 = (k1 + PHILOX_W1) & MASK32
    return c0, c1, c2, c3


def load_kat(path):
    """The philox4x32 10 known-answer vectors: from `path` if it exists, else built in."""
    if not path or not os.path.exists(path):
        return BUILTIN_KAT, "built-in copy"
    vectors = []
    with open(path) as f:
        for line in f:
            fields = line.split()
            if fields[:2] != ["philox4x32", "10"]:
                continue
            words = [int(w, 16) for w in fields[2:]]
            if len(words) != 10:
                raise ValueError(f"{path}: malformed philox4x32 10 line: {line.strip()}")
            vectors.append((words[0:4], words[4:6], words[6:10]))
    if not vectors:
        raise ValueError(f"{path}: no 'philox4x32 10' lines")
    return vectors, path


def check_philox(kat_path):
    """Raises if philox4x32_10 disagrees with any known-answer vector; returns the count."""
    vectors, source = load_kat(kat_path)
    for ctr, key, expected in vectors:
        got = [int(w) for w in philox4x32_10(*ctr, key[0], key[1])]
        if got != expected:
            raise AssertionError(
                f"philox4x32_10 KAT mismatch ({source}): ctr={ctr} key={key} "
                f"got {[hex(w) for w in got]} expected {[hex(w) for w in expected]}")
    return len(vectors), source


def dn_rand_u32(seed, domain, a, b, c, i):
    """dngen's dn_rand_u32, elementwise: a, b, c, i may be arrays (broadcast together)."""
    a, b, c, i = np.broadcast_arrays(*(np.asarray(v, dtype=np.uint32) for v in (a, b, c, i)))
    c3 = (np.uint32(domain) << np.uint32(24)) | (c & np.uint32(0xFFFFFF))
    words = philox4x32_10(i >> np.uint32(2), a, b, c3, seed & MASK32, (seed >> 32) & MASK32)
    return np.choose((i & np.uint32(3)).astype(np.intp), words)


def dropout_threshold(p):
    """dn_dropout_threshold: (uint32_t)(p * 4294967296.0) for a double p in [0, 1)."""
    t = int(float(p) * 4294967296.0)  # truncation, as the C conversion does
    assert 0 <= t <= MASK32
    return t


def dropout_mask(seed, step, slot, n_rows, n_units, p):
    """dngen's keep mask [n_rows, n_units] (float32 0/1) for one dropout slot.

    Vectorized: one Philox call per group of 4 units yields all 4 words of the group.
    """
    groups = (n_units + 3) // 4
    g = np.arange(groups, dtype=np.uint32)[None, :]
    r = np.arange(n_rows, dtype=np.uint32)[:, None]
    c3 = np.uint32((DN_RNG_DROPOUT << 24) | (slot & 0xFFFFFF))
    w = philox4x32_10(g, r, np.uint32(step), c3, seed & MASK32, (seed >> 32) & MASK32)
    words = np.stack(w, axis=-1).reshape(n_rows, groups * 4)[:, :n_units]
    return (words >= np.uint32(dropout_threshold(p))).astype(np.float32)


def gauss_noise(seed, step, slot, n_rows, n_units):
    """dngen's N(0,1) noise [n_rows, n_units] (float32) for one slot: Box-Muller from the
    DN_RNG_NOISE words 2*unit and 2*unit+1, in double, rounded to float32 (dn_gauss4)."""
    r = np.arange(n_rows, dtype=np.uint32)[:, None]
    u = np.arange(n_units, dtype=np.uint32)[None, :]
    w0 = dn_rand_u32(seed, DN_RNG_NOISE, r, step, slot, 2 * u).astype(np.float64)
    w1 = dn_rand_u32(seed, DN_RNG_NOISE, r, step, slot, 2 * u + 1).astype(np.float64)
    u1 = (w0 + 1.0) * (1.0 / 4294967296.0)
    u2 = w1 * (1.0 / 4294967296.0)
    return (np.sqrt(-2.0 * np.log(u1)) * np.cos(6.283185307179586 * u2)).astype(np.float32)


# ---- safetensors ---------------------------------------------------------------------------

_ST_DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64",
              np.dtype(np.int64): "I64", np.dtype(np.int32): "I32", np.dtype(np.uint8): "U8"}
_ST_NUMPY = {v: k for k, v in _ST_DTYPES.items()}


def write_safetensors(path, tensors, metadata):
    """Writes `tensors` (list of (name, numpy array)) and string `metadata` to `path`.

    Layout: u64 little-endian header length, JSON header padded with spaces to a multiple
    of 8 bytes, then the tensors' little-endian bytes back to back in the given order.
    The file is written to a temporary name and renamed into place.
    """
    header = {"__metadata__": {str(k): str(v) for k, v in metadata.items()}}
    blobs = []
    offset = 0
    for name, arr in tensors:
        arr = np.array(arr, order="C", copy=False)  # (ascontiguousarray would make 0-d 1-d)
        dtype = _ST_DTYPES[arr.dtype]
        data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for data in blobs:
            f.write(data)
    os.replace(tmp, path)


def read_safetensors(path):
    """Reads a safetensors file; returns (metadata dict, {name: numpy array})."""
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    base = 8 + n
    meta = header.pop("__metadata__", {})
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        dtype = _ST_NUMPY[info["dtype"]].newbyteorder("<")
        out[name] = np.frombuffer(raw[base + b:base + e], dtype=dtype).reshape(info["shape"])
    return meta, out


# ---- the networks --------------------------------------------------------------------------

ACTIVATIONS = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "linear": lambda z: z,
    "softmax": lambda z: torch.softmax(z, dim=1),
}


def act_params(act):
    """(type, parameters) of a layer's activation: a name ("swish" is silu) or a dict
    {type, slope | alpha | beta, threshold | approximate} as the spec writes it."""
    if isinstance(act, str):
        act = {"type": act}
    kind = "silu" if act["type"] == "swish" else act["type"]
    return kind, {k: v for k, v in act.items() if k != "type"}


def act_fn(act):
    """The PyTorch function of a layer's activation, with PyTorch's defaults."""
    kind, p = act_params(act)
    if kind == "leaky_relu":
        return lambda z: F.leaky_relu(z, p.get("slope", 0.01))
    if kind == "elu":
        return lambda z: F.elu(z, alpha=p.get("alpha", 1.0))
    if kind == "gelu":
        return lambda z: F.gelu(z, approximate=p.get("approximate", "none"))
    if kind == "silu":
        return F.silu
    if kind == "softplus":
        return lambda z: F.softplus(z, beta=p.get("beta", 1.0), threshold=p.get("threshold", 20.0))
    return ACTIVATIONS[kind]


def act_kink(act):
    """Where an activation's derivative jumps (relu, leaky_relu, elu with alpha != 1: at
    0; softplus: where beta z passes its threshold), or None."""
    kind, p = act_params(act)
    if kind in ("relu", "leaky_relu") or (kind == "elu" and p.get("alpha", 1.0) != 1.0):
        return 0.0
    if kind == "softplus":
        return p.get("threshold", 20.0) / p.get("beta", 1.0)
    return None


def bn_settings(layer):
    """(momentum, eps) of a layer's batch norm, or None without one."""
    bn = layer.get("batchnorm")
    if not bn:
        return None
    bn = {} if bn is True else bn
    return bn.get("momentum", 0.1), bn.get("eps", 1e-5)


def layer_type(layer):
    return layer.get("type", "dense")


def _pair(v):
    """A window size, stride or padding as (h, w): N or [h, w]."""
    return (v, v) if isinstance(v, int) else tuple(v)


def conv_padding(layer):
    """(top, bottom, left, right) zero padding of a conv2d, as dngen and PyTorch pad:
    `same` puts the extra row and column of an even kernel after."""
    pad = layer.get("padding", 0)
    if pad == "same":
        kh, kw = _pair(layer["kernel"])
        return (kh - 1) // 2, kh - 1 - (kh - 1) // 2, (kw - 1) // 2, kw - 1 - (kw - 1) // 2
    ph, pw = _pair(pad)
    return ph, ph, pw, pw


def layer_shapes(case):
    """Each layer's output shape: (c, h, w) for an image, an int for flat features."""
    cur = case["input"]
    cur = tuple(cur) if isinstance(cur, list) else cur
    shapes = []
    for layer in case["layers"]:
        t = layer_type(layer)
        if t == "dense":
            cur = layer["units"]
        elif t == "flatten":
            cur = cur[0] * cur[1] * cur[2]
        else:
            c, h, w = cur
            kh, kw = _pair(layer["kernel"])
            if t == "conv2d":
                sh, sw = _pair(layer.get("stride", 1))
                top, bottom, left, right = conv_padding(layer)
                c = layer["filters"]
            else:  # pools: no padding, stride defaults to the window
                sh, sw = _pair(layer.get("stride", layer["kernel"]))
                top = bottom = left = right = 0
            cur = (c, (h + top + bottom - kh) // sh + 1, (w + left + right - kw) // sw + 1)
        shapes.append(cur)
    return shapes


def flat_size(shape):
    return shape if isinstance(shape, int) else shape[0] * shape[1] * shape[2]


class SpecNet(nn.Module):
    """A network as a dngen spec describes it; parameters named <layer>.weight/bias,
    a layer's batch norm (Linear -> BatchNorm1d -> activation, or Conv2d -> BatchNorm2d
    -> activation) <layer>_bn.*.

    Dense layers are nn.Linear; image layers nn.Conv2d (then the activation),
    nn.MaxPool2d / nn.AvgPool2d (no padding, floor mode) and nn.Flatten."""

    def __init__(self, spec):
        super().__init__()
        self.spec = spec
        shape = spec["input"]
        for layer, out_shape in zip(spec["layers"], layer_shapes(spec)):
            t = layer_type(layer)
            if t == "conv2d":
                pad = layer.get("padding", 0)
                pad = "same" if pad == "same" else _pair(pad)
                self.add_module(layer["name"], nn.Conv2d(shape[0], layer["filters"], _pair(layer["kernel"]),
                                                         stride=_pair(layer.get("stride", 1)), padding=pad))
                bn = bn_settings(layer)
                if bn:
                    self.add_module(layer["name"] + "_bn",
                                    nn.BatchNorm2d(layer["filters"], momentum=bn[0], eps=bn[1]))
            elif t in ("maxpool2d", "avgpool2d"):
                cls = nn.MaxPool2d if t == "maxpool2d" else nn.AvgPool2d
                self.add_module(layer["name"], cls(_pair(layer["kernel"]),
                                                   stride=_pair(layer.get("stride", layer["kernel"]))))
            elif t == "flatten":
                self.add_module(layer["name"], nn.Flatten())
            else:
                self.add_module(layer["name"], nn.Linear(shape, layer["units"]))
                bn = bn_settings(layer)
                if bn:
                    self.add_module(layer["name"] + "_bn",
                                    nn.BatchNorm1d(layer["units"], momentum=bn[0], eps=bn[1]))
            shape = out_shape

    def forward(self, x, masks=None, noises=None, record=None):
        """Returns (logits, output): the last layer's pre-activation and its activation.

        `masks` maps slot names (input, <layer>) to 0/1 keep masks; None = dropout off.
        A channel mask [n, c] keeps or drops whole channels of an image [n, c, h, w].
        `noises` maps layer names to the noise added to their output (sigma * N(0,1)),
        before dropout; None = no noise (eval). `record`, a list, receives
        (layer, kind, tensor) for every pre-activation of an activation with a kink
        ("relu": its distance to the kink, act_kink) and max pool input ("maxpool"),
        to measure how far results are from a tie.
        """
        h = x
        p_in = self.spec.get("input_dropout", 0.0)
        if masks is not None and p_in > 0:
            h = h * masks["input"] / (1 - p_in)
        layers = self.spec["layers"]
        for k, layer in enumerate(layers):
            t = layer_type(layer)
            if record is not None and t == "maxpool2d":
                record.append((layer["name"], "maxpool", h.detach()))
            z = getattr(self, layer["name"])(h)
            if t in ("maxpool2d", "avgpool2d", "flatten"):
                h = z
            else:
                if bn_settings(layer):
                    z = getattr(self, layer["name"] + "_bn")(z)
                kink = act_kink(layer["activation"])
                if record is not None and kink is not None:
                    record.append((layer["name"], "relu", z.detach() - kink))
                if k == len(layers) - 1:
                    return z, act_fn(layer["activation"])(z)
                h = act_fn(layer["activation"])(z)
            if noises is not None and layer["name"] in noises:
                h = h + noises[layer["name"]]
            p = layer.get("dropout", 0.0)
            if masks is not None and p > 0:
                m = masks[layer["name"]]
                if h.dim() == 4 and m.dim() == 2:  # channel mode
                    m = m[:, :, None, None]
                h = h * m / (1 - p)
        raise AssertionError("no layers")


def loss_fn(spec, logits, output, y):
    """Mean loss over the batch: cross entropy on the logits (with the case's
    label_smoothing), binary cross entropy on the one logit (the stable
    binary_cross_entropy_with_logits) against y in {0, 1}, multi-label binary cross
    entropy (nn.BCEWithLogitsLoss: the mean over all n * K elements) against the 0/1
    targets y [n, K], or MSE against one-hot y."""
    if spec["loss"] == "cross_entropy":
        return F.cross_entropy(logits, y, label_smoothing=spec.get("label_smoothing", 0.0))
    if spec.get("multilabel"):
        return nn.BCEWithLogitsLoss()(logits, y)
    if spec["loss"] == "binary_cross_entropy":
        return F.binary_cross_entropy_with_logits(logits[:, 0], y.to(logits.dtype))
    target = F.one_hot(y, num_classes=output.shape[1]).to(output.dtype)
    return F.mse_loss(output, target)  # mean over rows and outputs


def make_optimizer(spec, params):
    o = spec["optimizer"]
    if o["type"] == "sgd":
        return torch.optim.SGD(params, lr=o["lr"], momentum=o["momentum"], dampening=o["dampening"],
                               nesterov=o["nesterov"], weight_decay=o["weight_decay"], foreach=False)
    if o["type"] == "rmsprop":
        return torch.optim.RMSprop(params, lr=o["lr"], alpha=o["alpha"], eps=o["eps"],
                                   momentum=o["momentum"], centered=o["centered"],
                                   weight_decay=o["weight_decay"], foreach=False)
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[o["type"]]
    return cls(params, lr=o["lr"], betas=tuple(o["betas"]), eps=o["eps"],
               weight_decay=o["weight_decay"], foreach=False)


# ---- the cases -----------------------------------------------------------------------------

def _opt(kind="adam", lr=0.01, wd=0.0):
    return {"type": kind, "lr": lr, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": wd}


def _sgd(lr, momentum, dampening=0.0, nesterov=False, wd=0.0):
    return {"type": "sgd", "lr": lr, "momentum": momentum, "dampening": dampening,
            "nesterov": nesterov, "weight_decay": wd}


def _rmsprop(lr, alpha, momentum, centered, wd=0.0):
    return {"type": "rmsprop", "lr": lr, "alpha": alpha, "eps": 1e-8, "momentum": momentum,
            "centered": centered, "weight_decay": wd}


def _small_ce_layers(dropout):
    rates = [0.3, 0.5, 0.0, 0.0] if dropout else [0.0] * 4
    shapes = [("fc1", 6, "tanh"), ("fc2", 5, "sigmoid"), ("fc3", 4, "relu"), ("out", 3, "softmax")]
    return [{"name": n, "units": u, "activation": a, "dropout": p}
            for (n, u, a), p in zip(shapes, rates)]


CASES = {
    "small_ce": {
        "doc": "input dropout, tanh/sigmoid/relu hidden layers with dropout, softmax + cross entropy",
        "input": 7, "input_dropout": 0.2, "layers": _small_ce_layers(True),
        "loss": "cross_entropy", "optimizer": _opt(), "n": 5,
        "seed": 12345678901,  # above 2^32: exercises the second Philox key word
        "torch_seed": 1, "x_range": 1.0,
    },
    "small_mse": {
        "doc": "relu hidden layer with dropout, linear output, MSE against one-hot labels",
        "input": 6, "input_dropout": 0.0,
        "layers": [{"name": "fc1", "units": 5, "activation": "relu", "dropout": 0.25},
                   {"name": "fc2", "units": 4, "activation": "linear", "dropout": 0.0}],
        "loss": "mse", "optimizer": _opt(), "n": 5, "seed": 7, "torch_seed": 2, "x_range": 1.0,
    },
    "small_adamw": {
        "doc": "small_ce without dropout, AdamW with decoupled weight decay 0.01",
        "input": 7, "input_dropout": 0.0, "layers": _small_ce_layers(False),
        "loss": "cross_entropy", "optimizer": _opt("adamw", wd=0.01), "n": 5, "seed": 3,
        "torch_seed": 3, "x_range": 1.0,
    },
    "small_l2": {
        "doc": "small_ce without dropout, Adam with coupled L2 weight decay 0.01",
        "input": 7, "input_dropout": 0.0, "layers": _small_ce_layers(False),
        "loss": "cross_entropy", "optimizer": _opt("adam", wd=0.01), "n": 5, "seed": 4,
        "torch_seed": 4, "x_range": 1.0,
    },
    "small_noise": {
        "doc": "Gaussian noise injection on hidden layers (with and without dropout)",
        "input": 6, "input_dropout": 0.0,
        "layers": [{"name": "fc1", "units": 5, "activation": "tanh", "dropout": 0.2, "noise": 0.3},
                   {"name": "fc2", "units": 4, "activation": "relu", "dropout": 0.0, "noise": 0.1},
                   {"name": "out", "units": 3, "activation": "softmax", "dropout": 0.0}],
        "loss": "cross_entropy", "optimizer": _opt(), "n": 5, "seed": 99, "torch_seed": 5,
        "x_range": 1.0,
    },
    "small_bn": {
        "doc": "batch norm before relu (then dropout) and before tanh (momentum 0.2, eps 1e-3, "
               "then noise), Adam with L2 weight decay",
        "input": 7, "input_dropout": 0.0,
        "layers": [{"name": "fc1", "units": 6, "activation": "relu", "dropout": 0.3,
                    "batchnorm": True},
                   {"name": "fc2", "units": 5, "activation": "tanh", "dropout": 0.0, "noise": 0.1,
                    "batchnorm": {"momentum": 0.2, "eps": 1e-3}},
                   {"name": "out", "units": 3, "activation": "softmax", "dropout": 0.0}],
        "loss": "cross_entropy", "optimizer": _opt(wd=0.01), "n": 6, "seed": 11, "torch_seed": 6,
        "x_range": 1.0,
    },
    "small_bn_out": {
        # The bias before a batch norm has a zero gradient up to rounding, and Adam turns
        # rounding noise into steps of about lr, different in any two implementations; the
        # coupled L2 term keeps that gradient meaningful, so 10 steps stay comparable.
        "doc": "batch norm on a sigmoid hidden layer and on the output layer (before softmax), "
               "Adam with L2 weight decay",
        "input": 6, "input_dropout": 0.0,
        "layers": [{"name": "fc1", "units": 5, "activation": "sigmoid", "dropout": 0.0,
                    "batchnorm": True},
                   {"name": "out", "units": 4, "activation": "softmax", "dropout": 0.0,
                    "batchnorm": True}],
        "loss": "cross_entropy", "optimizer": _opt(wd=0.01), "n": 5, "seed": 12, "torch_seed": 7,
        "x_range": 1.0,
    },
    "seed_mlp": {
        "doc": "the seed article's DropoutNet: 784-256-128-10, relu, dropout 0.5/0.3",
        "input": 784, "input_dropout": 0.0,
        "layers": [{"name": "fc1", "units": 256, "activation": "relu", "dropout": 0.5},
                   {"name": "fc2", "units": 128, "activation": "relu", "dropout": 0.3},
                   {"name": "fc3", "units": 10, "activation": "softmax", "dropout": 0.0}],
        "loss": "cross_entropy", "optimizer": _opt(lr=0.001), "n": 4, "seed": 42,
        "torch_seed": 42, "x_range": 1.0,
    },
    # Convolutional nets. Together: kernels 3, 5 and rectangular ones, stride 1 and 2,
    # padding 0, 1, 2, [1, 0] and same (odd and even kernel), max and average pooling
    # with odd windows and sizes (floor mode drops a row or column), windows whose stride
    # differs from their size, element and channel dropout on convolutions and pools
    # (channel counts above 4) and on an image input, several input channels, a conv
    # after a pool, flatten then dense, both losses, Adam and AdamW.
    "small_conv1": {
        "doc": "3 input channels; conv 3x3 padding 1 (tanh, element dropout), overlapping 3x3 max "
               "pool with stride 2, conv 3x3 stride 2 (relu, channel dropout), flatten, dense",
        "input": [3, 11, 11], "input_dropout": 0.0,
        "layers": [{"name": "conv1", "type": "conv2d", "filters": 4, "kernel": 3, "padding": 1,
                    "activation": "tanh", "dropout": 0.2},
                   {"name": "pool1", "type": "maxpool2d", "kernel": 3, "stride": 2},
                   {"name": "conv2", "type": "conv2d", "filters": 6, "kernel": 3, "stride": 2,
                    "activation": "relu", "dropout": 0.3, "dropout_mode": "channel"},
                   {"name": "flat", "type": "flatten"},
                   {"name": "fc1", "units": 7, "activation": "tanh", "dropout": 0.25},
                   {"name": "out", "units": 3, "activation": "softmax", "dropout": 0.0}],
        "loss": "cross_entropy", "optimizer": _opt(), "n": 4, "seed": 21, "torch_seed": 21,
        "x_range": 1.0,
    },
    "small_conv2": {
        "doc": "2 input channels with element dropout; conv 5x5 same (sigmoid), 3x3 average pool "
               "of a 10x8 plane (channel dropout), conv 2x2 same (linear, element dropout), "
               "flatten, linear output, MSE",
        "input": [2, 10, 8], "input_dropout": 0.1,
        "layers": [{"name": "conv1", "type": "conv2d", "filters": 3, "kernel": 5, "padding": "same",
                    "activation": "sigmoid"},
                   {"name": "pool1", "type": "avgpool2d", "kernel": 3, "dropout": 0.25,
                    "dropout_mode": "channel"},
                   {"name": "conv2", "type": "conv2d", "filters": 4, "kernel": 2, "padding": "same",
                    "activation": "linear", "dropout": 0.3},
                   {"name": "flat", "type": "flatten"},
                   {"name": "out", "units": 4, "activation": "linear", "dropout": 0.0}],
        "loss": "mse", "optimizer": _opt(), "n": 3, "seed": 22, "torch_seed": 22, "x_range": 1.0,
    },
    "small_conv3": {
        "doc": "conv 5x5 stride 2 padding 2 (relu), 2x2 average pool with stride 1 (element "
               "dropout), conv 3x2 stride [1, 2] padding [1, 0] (tanh), 3x2 max pool with stride "
               "[2, 1] (channel dropout), flatten, dense with dropout, AdamW",
        "input": [1, 12, 12], "input_dropout": 0.0,
        "layers": [{"name": "conv1", "type": "conv2d", "filters": 4, "kernel": 5, "stride": 2,
                    "padding": 2, "activation": "relu"},
                   {"name": "pool1", "type": "avgpool2d", "kernel": 2, "stride": 1, "dropout": 0.2},
                   {"name": "conv2", "type": "conv2d", "filters": 5, "kernel": [3, 2], "stride": [1, 2],
                    "padding": [1, 0], "activation": "tanh"},
                   {"name": "pool2", "type": "maxpool2d", "kernel": [3, 2], "stride": [2, 1],
                    "dropout": 0.4, "dropout_mode": "channel"},
                   {"name": "flat", "type": "flatten"},
                   {"name": "fc1", "units": 6, "activation": "relu", "dropout": 0.25},
                   {"name": "out", "units": 4, "activation": "softmax", "dropout": 0.0}],
        "loss": "cross_entropy", "optimizer": _opt("adamw", wd=0.01), "n": 4, "seed": 23,
        "torch_seed": 23, "x_range": 1.0,
    },
    # BatchNorm2d. Coupled L2 weight decay, as in the dense batch norm cases: the conv
    # biases before batch norm have a zero gradient up to rounding.
    "small_conv4": {
        "doc": "BatchNorm2d: conv 3x3 (register-tiled forward) with batch norm (tanh, element "
               "dropout), 2x2 max pool, conv 2x2 padding 1 with 10 filters and batch norm "
               "(momentum 0.2, eps 1e-3; relu, channel dropout), 2x2 average pool, flatten, "
               "dense, Adam with L2 weight decay",
        "input": [2, 9, 12], "input_dropout": 0.0,
        "layers": [{"name": "conv1", "type": "conv2d", "filters": 4, "kernel": 3,
                    "activation": "tanh", "dropout": 0.2, "batchnorm": True},
                   {"name": "pool1", "type": "maxpool2d", "kernel": 2},
                   {"name": "conv2", "type": "conv2d", "filters": 10, "kernel": 2, "padding": 1,
                    "activation": "relu", "dropout": 0.3, "dropout_mode": "channel",
                    "batchnorm": {"momentum": 0.2, "eps": 1e-3}},
                   {"name": "pool2", "type": "avgpool2d", "kernel": 2},
                   {"name": "flat", "type": "flatten"},
                   {"name": "out", "units": 3, "activation": "softmax", "dropout": 0.0}],
        "loss": "cross_entropy", "optimizer": _opt(wd=0.01), "n": 8, "seed": 29,
        "torch_seed": 29, "x_range": 1.0,
    },
    # Other optimizers and gradient clipping (the 10 steps are theirs; the tensors keep
    # the adam10 names).
    "small_sgd": {
        "doc": "small_ce without dropout, SGD with nesterov momentum 0.9 and weight decay 0.01",
        "input": 7, "input_dropout": 0.0, "layers": _small_ce_layers(False),
        "loss": "cross_entropy", "optimizer": _sgd(0.1, 0.9, nesterov=True, wd=0.01), "n": 5,
        "seed": 31, "torch_seed": 31, "x_range": 1.0,
    },
    "small_rmsprop": {
        "doc": "small_ce without dropout, centered RMSprop with momentum 0.5 and weight decay 0.01",
        "input": 7, "input_dropout": 0.0, "layers": _small_ce_layers(False),
        "loss": "cross_entropy", "optimizer": _rmsprop(0.01, 0.9, 0.5, True, wd=0.01), "n": 5,
        "seed": 32, "torch_seed": 32, "x_range": 1.0,
    },
    "small_clip": {
        "doc": "small_ce without dropout, Adam with the gradient norm clipped to 0.05",
        "input": 7, "input_dropout": 0.0, "layers": _small_ce_layers(False),
        "loss": "cross_entropy", "optimizer": _opt(), "clip": 0.05, "n": 5,
        "seed": 33, "torch_seed": 33, "x_range": 1.0,
    },
    "small_clip_sgd": {
        "doc": "tanh and sigmoid layers, SGD with momentum 0.8 and dampening 0.3, the gradient norm "
               "clipped to 0.08",
        "input": 6, "input_dropout": 0.0,
        "layers": [{"name": "fc1", "units": 8, "activation": "tanh", "dropout": 0.0},
                   {"name": "fc2", "units": 5, "activation": "sigmoid", "dropout": 0.0},
                   {"name": "out", "units": 4, "activation": "softmax", "dropout": 0.0}],
        "loss": "cross_entropy", "optimizer": _sgd(0.5, 0.8, dampening=0.3), "clip": 0.08, "n": 6,
        "seed": 34, "torch_seed": 34, "x_range": 3.0,
    },
    "small_act": {
        "doc": "every activation of issue 24 on dense layers (leaky_relu 0.2 with dropout, elu "
               "1.3 after batch norm, gelu with dropout, gelu tanh, swish, softplus, softplus beta 2 "
               "threshold 1, leaky_relu -0.1, elu -0.5), cross entropy with label smoothing 0.1, "
               "Adam with L2 weight decay",
        "input": 7, "input_dropout": 0.0,
        "layers": [{"name": "fc1", "units": 8, "activation": {"type": "leaky_relu", "slope": 0.2},
                    "dropout": 0.2},
                   {"name": "fc2", "units": 7, "activation": {"type": "elu", "alpha": 1.3},
                    "dropout": 0.0, "batchnorm": True},
                   {"name": "fc3", "units": 7, "activation": "gelu", "dropout": 0.25},
                   {"name": "fc4", "units": 6, "activation": {"type": "gelu", "approximate": "tanh"},
                    "dropout": 0.0},
                   {"name": "fc5", "units": 6, "activation": "swish", "dropout": 0.0},
                   {"name": "fc6", "units": 5, "activation": "softplus", "dropout": 0.0},
                   {"name": "fc7", "units": 5,
                    "activation": {"type": "softplus", "beta": 2.0, "threshold": 1.0}, "dropout": 0.0},
                   {"name": "fc8", "units": 4, "activation": {"type": "leaky_relu", "slope": -0.1},
                    "dropout": 0.0},
                   {"name": "fc9", "units": 4, "activation": {"type": "elu", "alpha": -0.5},
                    "dropout": 0.0},
                   {"name": "out", "units": 3, "activation": "softmax", "dropout": 0.0}],
        "loss": "cross_entropy", "label_smoothing": 0.1, "optimizer": _opt(wd=0.01), "n": 6,
        "seed": 31, "torch_seed": 31, "x_range": 1.0, "check_ties": True,
    },
    "small_act_conv": {
        "doc": "issue 24's activations on convolutions (gelu in the register-tiled forward, "
               "swish with channel dropout, leaky_relu, elu 0.8, gelu tanh, softplus beta 2 "
               "threshold 1 with row padding), softplus dense, one sigmoid unit with binary "
               "cross entropy",
        "input": [2, 10, 12], "input_dropout": 0.0,
        "layers": [{"name": "conv1", "type": "conv2d", "filters": 4, "kernel": 3,
                    "activation": "gelu", "dropout": 0.2},
                   {"name": "pool1", "type": "maxpool2d", "kernel": 2},
                   {"name": "conv2", "type": "conv2d", "filters": 5, "kernel": 3,
                    "activation": "swish", "dropout": 0.3, "dropout_mode": "channel"},
                   {"name": "conv3", "type": "conv2d", "filters": 4, "kernel": 1,
                    "activation": {"type": "leaky_relu", "slope": 0.1}},
                   {"name": "conv4", "type": "conv2d", "filters": 4, "kernel": 1,
                    "activation": {"type": "elu", "alpha": 0.8}},
                   {"name": "conv5", "type": "conv2d", "filters": 3, "kernel": 1,
                    "activation": {"type": "gelu", "approximate": "tanh"}},
                   {"name": "conv6", "type": "conv2d", "filters": 3, "kernel": 1,
                    "activation": {"type": "softplus", "beta": 2.0, "threshold": 1.0}},
                   {"name": "flat", "type": "flatten"},
                   {"name": "fc1", "units": 5, "activation": "softplus", "dropout": 0.0},
                   {"name": "out", "units": 1, "activation": "sigmoid", "dropout": 0.0}],
        "loss": "binary_cross_entropy", "optimizer": _opt(), "n": 4, "seed": 32,
        "torch_seed": 32, "x_range": 1.0,
    },
    "small_bce": {
        "doc": "input dropout, silu hidden layer with dropout, one sigmoid unit after batch "
               "norm with binary cross entropy, Adam with L2 weight decay",
        "input": 6, "input_dropout": 0.2,
        "layers": [{"name": "fc1", "units": 5, "activation": "silu", "dropout": 0.3},
                   {"name": "out", "units": 1, "activation": "sigmoid", "dropout": 0.0,
                    "batchnorm": True}],
        "loss": "binary_cross_entropy", "optimizer": _opt(wd=0.01), "n": 6, "seed": 33,
        "torch_seed": 33, "x_range": 1.0,
    },
    "small_mlbce": {
        "doc": "input dropout, tanh hidden layer with dropout, three sigmoid units with "
               "multi-label binary cross entropy (BCEWithLogitsLoss) against 0/1 targets",
        "input": 5, "input_dropout": 0.1,
        "layers": [{"name": "fc1", "units": 7, "activation": "tanh", "dropout": 0.25},
                   {"name": "out", "units": 3, "activation": "sigmoid", "dropout": 0.0}],
        "loss": "binary_cross_entropy", "multilabel": True, "optimizer": _opt(), "n": 6,
        "seed": 34, "torch_seed": 34, "x_range": 1.0,
    },
}

MASK_STEP = 0   # optimizer step the masks are drawn for
# The conv cases are chosen so that no relu input or max pool window is this close to a
# tie (relative to its tensor's scale; see tie_margins): rounding differences between
# two implementations cannot flip a relu derivative or a max's position.
MIN_TIE_MARGIN = 1e-5
ADAM_STEPS = 10


def _num(v):
    """A float as YAML: shortest repr that round-trips (1e-08 -> 1.0e-8)."""
    if v == 0:
        return "0.0"
    s = repr(float(v))
    if "e" in s:
        mant, exp = s.split("e")
        if "." not in mant:
            mant += ".0"
        return f"{mant}e{int(exp)}"
    return s


def _yaml_value(v):
    """An int, a string or a list of ints as YAML flow text."""
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(str(e) for e in v) + "]"
    return str(v)


def _act_yaml(act):
    """An activation as the spec writes it: a name, or {type: NAME, key: value, ...}."""
    if isinstance(act, str):
        return act
    parts = [f"type: {act['type']}"]
    for key, v in act.items():
        if key != "type":
            parts.append(f"{key}: {v if isinstance(v, str) else _num(v)}")
    return "{" + ", ".join(parts) + "}"


def _loss_yaml(case):
    """The loss as the spec writes it (a mapping with label smoothing)."""
    e = case.get("label_smoothing", 0.0)
    if e > 0:
        return f"{{type: {case['loss']}, label_smoothing: {_num(e)}}}"
    return case["loss"]


def _image_layer_yaml(layer):
    """The spec line of a conv2d, pool or flatten layer."""
    item = f"  - {{name: {layer['name']}, type: {layer['type']}"
    for key in ("filters", "kernel", "stride", "padding"):
        if key in layer:
            item += f", {key}: {_yaml_value(layer[key])}"
    if "activation" in layer:
        item += f", activation: {_act_yaml(layer['activation'])}"
    p = layer.get("dropout", 0.0)
    if p > 0 and layer.get("dropout_mode", "element") == "channel":
        item += f", dropout: {{rate: {_num(p)}, mode: channel}}"
    elif p > 0:
        item += f", dropout: {_num(p)}"
    return item + _batchnorm_yaml(layer) + "}"


def _batchnorm_yaml(layer):
    """The `batchnorm` key of a layer's spec line, or "" without batch norm."""
    bn = layer.get("batchnorm")
    if bn is True:
        return ", batchnorm: true"
    if bn:
        return f", batchnorm: {{momentum: {_num(bn['momentum'])}, eps: {_num(bn['eps'])}}}"
    return ""


def _optimizer_yaml(o):
    """The spec's optimizer mapping (flow style) of a case."""
    head = f"{{type: {o['type']}, lr: {_num(o['lr'])}, "
    wd = f"weight_decay: {_num(o['weight_decay'])}}}"
    flag = {True: "true", False: "false"}
    if o["type"] == "sgd":
        return (head + f"momentum: {_num(o['momentum'])}, dampening: {_num(o['dampening'])}, "
                f"nesterov: {flag[o['nesterov']]}, " + wd)
    if o["type"] == "rmsprop":
        return (head + f"alpha: {_num(o['alpha'])}, eps: {_num(o['eps'])}, "
                f"momentum: {_num(o['momentum'])}, centered: {flag[o['centered']]}, " + wd)
    return (head + f"betas: [{_num(o['betas'][0])}, {_num(o['betas'][1])}], eps: {_num(o['eps'])}, "
            + wd)


def spec_yaml(name, case):
    """The dngen spec (YAML text) of a case."""
    lines = [f"# {name}: {case['doc']}.",
             "# Written by tools/torch_reference.py with the fixture "
             f"tests/fixtures/{name}.safetensors.",
             f"name: {name}"]
    if isinstance(case["input"], list):
        drop = f", dropout: {_num(case['input_dropout'])}" if case["input_dropout"] > 0 else ""
        lines.append(f"input: {{shape: {_yaml_value(case['input'])}{drop}}}")
    elif case["input_dropout"] > 0:
        lines.append(f"input: {{size: {case['input']}, dropout: {_num(case['input_dropout'])}}}")
    else:
        lines.append(f"input: {case['input']}")
    lines.append("layers:")
    for layer in case["layers"]:
        if layer_type(layer) != "dense":
            lines.append(_image_layer_yaml(layer))
            continue
        item = (f"  - {{name: {layer['name']}, units: {layer['units']}, "
                f"activation: {_act_yaml(layer['activation'])}")
        if layer["dropout"] > 0:
            item += f", dropout: {_num(layer['dropout'])}"
        if layer.get("noise", 0.0) > 0:
            item += f", noise: {_num(layer['noise'])}"
        lines.append(item + _batchnorm_yaml(layer) + "}")
    lines += ["train:",
              f"  batch_size: {case['n']}",
              "  epochs: 1",
              f"  seed: {case['seed']}",
              f"  loss: {_loss_yaml(case)}",
              f"  optimizer: {_optimizer_yaml(case['optimizer'])}"]
    if "clip" in case:
        lines.append(f"  clip_grad_norm: {_num(case['clip'])}")
    if case["input"] == 784:
        lines += ["data:", "  format: idx", "  dir: data/fashion-mnist",
                  "  normalize: {mean: 0.5, std: 0.5}"]
    if case.get("multilabel"):  # 0/1 target values: npy data (the files are never read)
        lines += ["data:", "  format: npy", "  train: x.npy", "  train_y: t.npy"]
    return "\n".join(lines) + "\n"


def image_dropout_mask(seed, step, slot, n_rows, shape, p, channel):
    """dngen's keep mask of an image layer's dropout: [n, c, h, w], or [n, c] in channel
    mode. Element mode: the unit of (channel c, position y * w + x) is c * plane4 + y * w
    + x, plane4 = h * w rounded up to a multiple of 4 (each channel starts a Philox
    block). Channel mode: unit c decides all of channel c."""
    c, h, w = shape
    if channel:
        return dropout_mask(seed, step, slot, n_rows, c, p)
    plane4 = (h * w + 3) // 4 * 4
    m = dropout_mask(seed, step, slot, n_rows, c * plane4, p).reshape(n_rows, c, plane4)
    return np.ascontiguousarray(m[:, :, :h * w]).reshape(n_rows, c, h, w)


def case_masks(case):
    """dngen's masks for every dropout slot: {slot name: float32 0/1}, [n, units] for a
    dense layer, [n, c, h, w] (element) or [n, c] (channel) for an image layer, and [n, in]
    or [n, c, h, w] for the input (whose units are its flat elements)."""
    n = case["n"]
    masks = {}
    if case["input_dropout"] > 0:
        shape = case["input"]
        masks["input"] = dropout_mask(case["seed"], MASK_STEP, 0, n, flat_size(
            tuple(shape) if isinstance(shape, list) else shape), case["input_dropout"])
        if isinstance(shape, list):
            masks["input"] = masks["input"].reshape(n, *shape)
    for k, (layer, shape) in enumerate(zip(case["layers"], layer_shapes(case))):
        p = layer.get("dropout", 0.0)
        if p <= 0:
            continue
        if isinstance(shape, tuple):
            masks[layer["name"]] = image_dropout_mask(case["seed"], MASK_STEP, 1 + k, n, shape, p,
                                                      layer.get("dropout_mode") == "channel")
        else:
            masks[layer["name"]] = dropout_mask(case["seed"], MASK_STEP, 1 + k, n,
                                                layer["units"], p)
    return masks


def case_noises(case):
    """sigma * N(0,1) per layer with noise, as float32 products like the C code."""
    out = {}
    for k, layer in enumerate(case["layers"]):
        sigma = layer.get("noise", 0.0)
        if sigma > 0:
            g = gauss_noise(case["seed"], MASK_STEP, 1 + k, case["n"], layer["units"])
            out[layer["name"]] = np.float32(sigma) * g
    return out


def _np(t):
    return t.detach().cpu().numpy().copy()


def tie_margins(case, record):
    """How far the recorded forward passes are from a tie that rounding could flip:
    {"relu": min |z| of relu pre-activations, "maxpool": min gap between the largest and
    the second largest value of a max pool window}, each relative to the largest |value|
    of its tensor. A flip would change a gradient by far more than rounding (relu'(z) or
    the max's position). Windows whose two largest values are both exactly 0 (relu or
    dropout zeros) are left out: every such position has a zero gradient either way."""
    layers = {layer["name"]: layer for layer in case["layers"]}
    out = {}
    for name, kind, t in record:
        scale = float(t.abs().max()) or 1.0
        if kind == "relu":
            m = float(t.abs().min()) / scale
        else:
            layer = layers[name]
            kh, kw = _pair(layer["kernel"])
            n, c = t.shape[:2]
            win = F.unfold(t, (kh, kw), stride=_pair(layer.get("stride", layer["kernel"])))
            top2 = win.reshape(n, c, kh * kw, -1).topk(2, dim=2).values
            tied_zero = (top2[:, :, 0] == 0) & (top2[:, :, 1] == 0)
            gaps = (top2[:, :, 0] - top2[:, :, 1])[~tied_zero]
            m = float(gaps.min()) / scale if gaps.numel() else float("inf")
        out[kind] = min(out.get(kind, float("inf")), m)
    return out


def case_targets(case, n, n_out, gen):
    """The batch's targets after x from gen: labels [n] in [0, n_out), or for a
    multi-label case 0/1 floats [n, K], K the output units."""
    if case.get("multilabel"):
        k = case["layers"][-1]["units"]
        return torch.randint(0, 2, (n, k), generator=gen, dtype=torch.int64).to(torch.float32)
    return torch.randint(0, n_out, (n,), generator=gen, dtype=torch.int64)


def build_case(name, case):
    """Runs PyTorch on one case; returns (list of (tensor name, array), metadata, the tie
    margins of its forward passes (tie_margins))."""
    torch.manual_seed(case["torch_seed"])
    model = SpecNet(case)
    gen = torch.Generator().manual_seed(case["torch_seed"] + 1000)
    n = case["n"]
    n_out = 2 if case["loss"] == "binary_cross_entropy" else case["layers"][-1]["units"]
    in_shape = case["input"] if isinstance(case["input"], list) else [case["input"]]
    x = (torch.rand(n, *in_shape, generator=gen) * 2 - 1) * case["x_range"]
    y = case_targets(case, n, n_out, gen)
    init = {k: v.detach().clone() for k, v in model.state_dict().items()}
    record = []

    # num_batches_tracked only matters for momentum=None, which dngen does not offer.
    out = [(f"init.{k}", _np(v)) for k, v in init.items() if not k.endswith("num_batches_tracked")]
    out += [("x", _np(x)), ("t" if case.get("multilabel") else "y", _np(y))]

    # Eval mode: dropout off, batch norm on its running statistics.
    model.eval()
    with torch.no_grad():
        logits, output = model(x, record=record)
        loss = loss_fn(case, logits, output, y)
    out += [("eval.logits", _np(logits)), ("eval.loss", _np(loss))]
    model.train()

    # Train mode with dngen's masks.
    masks_np = case_masks(case)
    masks = {k: torch.from_numpy(v) for k, v in masks_np.items()}
    out += [(f"mask.{k}", v) for k, v in masks_np.items()]
    noises_np = case_noises(case)
    noises = {k: torch.from_numpy(v) for k, v in noises_np.items()}
    out += [(f"noise.{k}", v) for k, v in noises_np.items()]
    model.zero_grad()
    logits, output = model(x, masks, noises, record=record)
    loss = loss_fn(case, logits, output, y)
    loss.backward()
    out += [("train.logits", _np(logits)), ("train.loss", _np(loss))]
    out += [(f"grad.{k}", _np(p.grad)) for k, p in model.named_parameters()]

    # ADAM_STEPS optimizer steps on the same batch, dropout off.
    model.load_state_dict(init)
    opt = make_optimizer(case, model.parameters())
    losses, norms = [], []
    for _ in range(ADAM_STEPS):
        opt.zero_grad()
        logits, output = model(x, record=record)
        loss = loss_fn(case, logits, output, y)
        losses.append(loss.item())
        loss.backward()
        if "clip" in case:
            norms.append(nn.utils.clip_grad_norm_(model.parameters(), case["clip"]).item())
        opt.step()
    if norms:
        # The case must test clipping: every step's norm above the limit.
        print(f"{name}: gradient norms {[float(f'{v:.3g}') for v in norms]}, clipped to {case['clip']}")
        assert min(norms) > case["clip"] * 1.5, norms
    out += [(f"adam{ADAM_STEPS}.{k}", _np(v)) for k, v in model.state_dict().items()
            if not k.endswith("num_batches_tracked")]
    out.append((f"adam{ADAM_STEPS}.loss", np.array(losses, dtype=np.float32)))
    if any(bn_settings(layer) for layer in case["layers"]):
        # Eval after training: batch norm on the running statistics of the 10 steps.
        model.eval()
        with torch.no_grad():
            logits, _ = model(x)
        out.append((f"adam{ADAM_STEPS}.eval.logits", _np(logits)))

    meta = {"case": name, "seed": case["seed"], "step": MASK_STEP,
            "torch_version": torch.__version__, "torch_seed": case["torch_seed"],
            "generator": "tools/torch_reference.py"}
    for arr_name, arr in out:
        assert arr.dtype in (np.float32, np.int64), (arr_name, arr.dtype)
    return out, meta, tie_margins(case, record)


def adam_conditioning(case):
    """How far float32 rounding alone moves a case's 10 optimizer steps: the steps of
    build_case (dropout off) in float32 and in float64 from the same initial weights;
    {tensor: (worst |f32 - f64| / max(|f64|, 0.01), entries over 1e-5)}, as the probe
    measures dngen against the fixture. A case whose float32 steps are this far from
    float64 cannot be compared with dngen more closely."""
    out = {}
    runs = []
    for dtype in (torch.float32, torch.float64):
        torch.manual_seed(case["torch_seed"])
        model = SpecNet(case).to(dtype)
        gen = torch.Generator().manual_seed(case["torch_seed"] + 1000)
        in_shape = case["input"] if isinstance(case["input"], list) else [case["input"]]
        x = ((torch.rand(case["n"], *in_shape, generator=gen) * 2 - 1) * case["x_range"]).to(dtype)
        y = case_targets(case, case["n"], case["layers"][-1]["units"], gen)
        if case.get("multilabel"):
            y = y.to(dtype)
        opt = make_optimizer(case, model.parameters())
        for _ in range(ADAM_STEPS):
            opt.zero_grad()
            logits, output = model(x)
            loss_fn(case, logits, output, y).backward()
            opt.step()
        runs.append({k: v.detach().double().numpy() for k, v in model.state_dict().items()
                     if not k.endswith("num_batches_tracked")})
    for k, ref in runs[1].items():
        err = np.abs(runs[0][k] - ref) / np.maximum(np.abs(ref), 1e-2)
        out[k] = (float(err.max()), int((err > 1e-5).sum()))
    return out


# ---- learning-rate schedules ----------------------------------------------------------------

# Each schedule's settings, in the order of the F64 vector `<name>.config` that the C test
# reads: type (1 step, 2 exponential, 3 cosine, 4 plateau: runtime/dn_runtime.h's DN_LRS_*),
# lr, step_size, gamma, warmup_steps, min_lr, factor, threshold, patience, cooldown,
# metric_acc (plateau: 1 = accuracy, mode max), total (cosine: the run's optimizer steps;
# per-epoch schedules: epochs).
SCHEDULE_KEYS = ["type", "lr", "step_size", "gamma", "warmup_steps", "min_lr", "factor",
                 "threshold", "patience", "cooldown", "metric_acc", "total"]
SCHEDULES = {
    "step": {"type": 1, "lr": 0.01, "step_size": 2, "gamma": 0.7, "total": 12},
    "exponential": {"type": 2, "lr": 0.001, "gamma": 0.9, "total": 12},
    "cosine": {"type": 3, "lr": 0.01, "warmup_steps": 5, "min_lr": 1e-4, "total": 40},
    "cosine_nowarmup": {"type": 3, "lr": 0.003, "warmup_steps": 0, "min_lr": 0.0, "total": 17},
    "plateau_loss": {"type": 4, "lr": 0.01, "factor": 0.5, "threshold": 0.01, "patience": 1,
                     "cooldown": 1, "min_lr": 0.002, "metric_acc": 0, "total": 16,
                     "metric": [1.0, 0.8, 0.795, 0.79, 0.7, 0.7, 0.71, 0.69, 0.695, 0.7, 0.5,
                                0.6, 0.6, 0.6, 0.6, 0.6]},
    "plateau_acc": {"type": 4, "lr": 0.1, "factor": 0.3, "threshold": 1e-4, "patience": 0,
                    "cooldown": 0, "min_lr": 0.0, "metric_acc": 1, "total": 10,
                    "metric": [0.5, 0.6, 0.6, 0.65, 0.64, 0.66, 0.66, 0.66, 0.9, 0.9]},
}


def schedule_lrs(cfg):
    """The learning rates PyTorch's scheduler gives: for per-epoch schedules the lr of
    epochs 0..total-1 (scheduler.step() after each, with the epoch's metric for plateau);
    for cosine the lr of optimizer steps 0..total-1 (scheduler.step() after each)."""
    param = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=cfg["lr"])
    t, total = cfg["type"], cfg["total"]
    if t == 1:
        sched = torch.optim.lr_scheduler.StepLR(opt, cfg["step_size"], cfg["gamma"])
    elif t == 2:
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, cfg["gamma"])
    elif t == 3 and cfg["warmup_steps"] > 0:
        w = cfg["warmup_steps"]
        warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1 / w, end_factor=1.0,
                                                 total_iters=w - 1)
        cos = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total - w, eta_min=cfg["min_lr"])
        sched = torch.optim.lr_scheduler.SequentialLR(opt, [warm, cos], milestones=[w])
    elif t == 3:
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total, eta_min=cfg["min_lr"])
    else:
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="max" if cfg["metric_acc"] else "min", factor=cfg["factor"],
            patience=cfg["patience"], threshold=cfg["threshold"], threshold_mode="rel",
            cooldown=cfg["cooldown"], min_lr=cfg["min_lr"])
    lrs = []
    for k in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step(cfg["metric"][k]) if t == 4 else sched.step()
    return np.array(lrs, dtype=np.float64)


def cosine_formula(cfg):
    """docs/spec.md's closed form of the cosine schedule, for comparison with PyTorch's chain."""
    w, total, base, lo = cfg["warmup_steps"], cfg["total"], cfg["lr"], cfg["min_lr"]
    out = []
    for s in range(total):
        if s < w:
            out.append(base * (s + 1) / w)
        else:
            frac = min(1.0, (s - w) / max(1, total - w))
            out.append(lo + (base - lo) * (1 + math.cos(math.pi * frac)) / 2)
    return np.array(out)


def build_schedules():
    """The tensors of schedules.safetensors: per schedule its config, its metrics (plateau)
    and PyTorch's learning rates."""
    out = []
    for name, cfg in SCHEDULES.items():
        vec = [float(cfg.get(k, 0)) for k in SCHEDULE_KEYS]
        out.append((f"{name}.config", np.array(vec, dtype=np.float64)))
        if "metric" in cfg:
            out.append((f"{name}.metric", np.array(cfg["metric"], dtype=np.float64)))
        lrs = schedule_lrs(cfg)
        out.append((f"{name}.lr", lrs))
        if cfg["type"] == 3:
            rel = np.max(np.abs(cosine_formula(cfg) - lrs) / lrs)
            print(f"{name}: the closed form is within {rel:.1e} of PyTorch's chain")
            assert rel < 1e-12, rel
        print(f"{name}: lr {[float(f'{v:.6g}') for v in lrs]}")
    return out


def self_check_masks():
    """dropout_mask and image_dropout_mask must agree with the scalar definition
    (dn_rand_u32 per unit)."""
    seed, step, slot, p = 0x0123456789ABCDEF, 5, 2, 0.3
    m = dropout_mask(seed, step, slot, 3, 11, p)
    thr = dropout_threshold(p)
    for r in range(3):
        for u in range(11):
            w = int(dn_rand_u32(seed, DN_RNG_DROPOUT, r, step, slot, u))
            assert m[r, u] == (1.0 if w >= thr else 0.0)
    # An image layer [3, 3, 5]: element (c, y, x) is unit c * 16 + y * 5 + x (plane4 16);
    # in channel mode unit c.
    m = image_dropout_mask(seed, step, slot, 2, (3, 3, 5), p, False)
    mc = image_dropout_mask(seed, step, slot, 2, (3, 3, 5), p, True)
    for r in range(2):
        for c in range(3):
            w = int(dn_rand_u32(seed, DN_RNG_DROPOUT, r, step, slot, c))
            assert mc[r, c] == (1.0 if w >= thr else 0.0)
            for y in range(3):
                for x in range(5):
                    w = int(dn_rand_u32(seed, DN_RNG_DROPOUT, r, step, slot, c * 16 + y * 5 + x))
                    assert m[r, c, y, x] == (1.0 if w >= thr else 0.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out-dir", default="tests/fixtures", help="where to write (default %(default)s)")
    ap.add_argument("--kat", default=DEFAULT_KAT,
                    help="Random123 kat_vectors file (default %(default)s; built-in copy if absent)")
    ap.add_argument("--case", action="append", choices=sorted(CASES) + ["schedules"],
                    help="only this case (repeatable; default all; `schedules`: the learning-rate "
                         "schedules' fixture)")
    ap.add_argument("--conditioning", action="store_true",
                    help="write nothing; print how far float32 rounding alone moves each "
                         "case's 10 optimizer steps (float32 against float64)")
    args = ap.parse_args()
    if args.conditioning:
        for name in args.case or list(CASES):
            for k, (worst, over) in adam_conditioning(CASES[name]).items():
                print(f"{name} {k}: f32 vs f64 worst {worst:.2e}, {over} over 1e-5")
        return 0

    torch.use_deterministic_algorithms(True)
    # nn.Conv2d(padding='same') with an even kernel pads a copy of its input: a note, not
    # a problem.
    warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")
    # SequentialLR steps its schedulers with an explicit epoch once, which 1.13 warns about.
    warnings.filterwarnings("ignore", message="The epoch parameter in `scheduler.step\(\)`")
    torch.set_num_threads(1)
    count, source = check_philox(args.kat)
    print(f"philox4x32_10: {count} known-answer vectors pass ({source})")
    self_check_masks()

    os.makedirs(args.out_dir, exist_ok=True)
    for name in args.case or list(CASES) + ["schedules"]:
        if name == "schedules":
            meta = {"torch_version": torch.__version__, "generator": "tools/torch_reference.py"}
            path = os.path.join(args.out_dir, "schedules.safetensors")
            write_safetensors(path, build_schedules(), meta)
            print(f"{path}: {os.path.getsize(path)} bytes")
            continue
        case = CASES[name]
        tensors, meta, margins = build_case(name, case)
        if ((isinstance(case["input"], list) or case.get("check_ties"))
                and min(margins.values(), default=1.0) < MIN_TIE_MARGIN):
            raise SystemExit(f"{name}: a relu input or max pool window is within "
                             f"{MIN_TIE_MARGIN} of a tie ({margins}); choose other seeds or sizes")
        st_path = os.path.join(args.out_dir, f"{name}.safetensors")
        write_safetensors(st_path, tensors, meta)
        back_meta, back = read_safetensors(st_path)
        assert back_meta == {k: str(v) for k, v in meta.items()}
        for t_name, arr in tensors:
            assert np.array_equal(back[t_name], arr), t_name
        with open(os.path.join(args.out_dir, f"{name}.yaml"), "w") as f:
            f.write(spec_yaml(name, case))
        kept = {k[5:]: f"{int(v.sum())}/{v.size}" for k, v in tensors if k.startswith("mask.")}
        print(f"{st_path}: {len(tensors)} tensors, {os.path.getsize(st_path)} bytes, "
              f"eval.loss {dict(tensors)['eval.loss']:.6f}, train.loss "
              f"{dict(tensors)['train.loss']:.6f}, kept {kept}, tie margins "
              f"{ {k: float(f'{v:.2e}') for k, v in margins.items()} }")
    return 0


if __name__ == "__main__":
    sys.exit(main())
