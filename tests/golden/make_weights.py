#!/usr/bin/env python3
"""Writes the weights that the golden predictor snapshots embed: the `init.*`
tensors of a PyTorch fixture under their plain state_dict names.

    python3 tests/golden/make_weights.py tests/fixtures/small_ce.safetensors \
        tests/golden/small_ce_weights.safetensors

Standard library only; the output is deterministic. The build never runs it.
"""
import json
import struct
import sys


def main(src, dst):
    with open(src, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    out_header, out_data = {}, b""
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0] if kv[0] != "__metadata__" else -1):
        if not name.startswith("init."):
            continue
        lo, hi = info["data_offsets"]
        out_header[name[len("init."):]] = {"dtype": info["dtype"], "shape": info["shape"],
                                           "data_offsets": [len(out_data), len(out_data) + hi - lo]}
        out_data += data[lo:hi]
    text = json.dumps(out_header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + out_data)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
