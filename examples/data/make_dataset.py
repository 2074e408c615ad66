"""Writes a small multimodal data set that a tiny model can learn: images
of coloured shapes with their captions, and audio tones with theirs.

  make_dataset.py DIR [--samples N] [--audio] [--eval M] [--prompts]
                      [--image 32] [--seed S] [--broken]

DIR/manifest.jsonl holds one sample per line; DIR/img/*.png are RGB images
(a filled square or disc of one of four colours on black), DIR/wav/*.wav
16 kHz mono tones (one of four pitches). Captions name what the media show
("a red square.", "a low tone."), so the colour, shape and pitch words are
predictable only from the media. A few deliberately broken lines (a missing
file, bad JSON) exercise skipping (--broken).

--eval M also writes DIR/eval.jsonl: M held-out samples drawn after the
training ones (their own files, img/eval-*.png or wav/eval-*.wav), for
`mllm-run --eval`. --prompts then writes DIR/prompts.jsonl, the held-out
media with the prompt "a" (for `mllm-run --generate`, which continues the
text), and DIR/answers.txt, each prompt's true caption, one per line.

Examples and tests share it (examples/tiny_vlm_shapes.mllm,
examples/tiny_audio_tones.mllm, test/mllm-run/data.test, learning.test).
Only Python's standard library: PNG via zlib, WAV via `wave`.
"""

import argparse
import json
import math
import os
import random
import struct
import wave
import zlib

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 60),
           "blue": (40, 60, 230), "yellow": (230, 220, 40)}
SHAPES = ["square", "disc"]
PITCHES = {"low": 220.0, "middle": 440.0, "high": 880.0, "very high": 1760.0}


def write_png(path, width, height, pixels):
    rows = b"".join(b"\x00" + bytes(pixels[y * width * 3:(y + 1) * width * 3])
                    for y in range(height))

    def chunk(kind, data):
        body = kind + data
        return (struct.pack(">I", len(data)) + body +
                struct.pack(">I", zlib.crc32(body) & 0xffffffff))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                           0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(rows)))
        f.write(chunk(b"IEND", b""))


def shape_image(size, colour, shape, rng):
    pixels = [0] * (size * size * 3)
    # Sizes vary little, so a tiny encoder tells a square from a disc
    # within a CPU-minute (a wide range of sizes needs far more steps).
    r = size * 5 // 16 + rng.randrange(2)
    cx = size // 2 + rng.randrange(-2, 3)
    cy = size // 2 + rng.randrange(-2, 3)
    for y in range(size):
        for x in range(size):
            inside = (abs(x - cx) <= r and abs(y - cy) <= r
                      if shape == "square"
                      else (x - cx) ** 2 + (y - cy) ** 2 <= r * r)
            if inside:
                pixels[(y * size + x) * 3:(y * size + x) * 3 + 3] = colour
    return pixels


def write_tone(path, freq, seconds, rate=16000):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        frames = b"".join(
            struct.pack("<h", int(12000 * math.sin(2 * math.pi * freq * t / rate)))
            for t in range(int(seconds * rate)))
        w.writeframes(frames)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--samples", type=int, default=48)
    ap.add_argument("--image", type=int, default=32)
    ap.add_argument("--audio", action="store_true",
                    help="tones and their pitch instead of images")
    ap.add_argument("--seconds", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--broken", action="store_true",
                    help="append a line with a missing file and a bad line")
    ap.add_argument("--eval", type=int, default=0, metavar="M",
                    help="also write M held-out samples to eval.jsonl")
    ap.add_argument("--prompts", action="store_true",
                    help="with --eval: prompts.jsonl and answers.txt")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    os.makedirs(os.path.join(args.dir, "img"), exist_ok=True)
    os.makedirs(os.path.join(args.dir, "wav"), exist_ok=True)

    def draw(prefix, i):
        if args.audio:
            name = rng.choice(sorted(PITCHES))
            path = "wav/%s%03d.wav" % (prefix, i)
            write_tone(os.path.join(args.dir, path), PITCHES[name],
                       args.seconds)
            return {"text": "a %s tone." % name, "audio": [path]}
        colour = rng.choice(sorted(COLOURS))
        shape = rng.choice(SHAPES)
        path = "img/%s%03d.png" % (prefix, i)
        write_png(os.path.join(args.dir, path), args.image, args.image,
                  shape_image(args.image, COLOURS[colour], shape, rng))
        return {"text": "a %s %s." % (colour, shape), "vision": [path]}

    def write(name, lines):
        with open(os.path.join(args.dir, name), "w") as f:
            for line in lines:
                f.write(json.dumps(line) + "\n")

    lines = [draw("", i) for i in range(args.samples)]
    write("manifest.jsonl", lines)
    if args.broken:
        key = "audio" if args.audio else "vision"
        with open(os.path.join(args.dir, "manifest.jsonl"), "a") as f:
            f.write(json.dumps({"text": "gone", key: ["missing.png"]}) + "\n")
            f.write("{not json\n")
    if args.eval:
        held = [draw("eval-", i) for i in range(args.eval)]
        write("eval.jsonl", held)
        if args.prompts:
            key = "audio" if args.audio else "vision"
            write("prompts.jsonl", [{"text": "a", key: s[key]} for s in held])
            with open(os.path.join(args.dir, "answers.txt"), "w") as f:
                for s in held:
                    f.write(s["text"] + "\n")


if __name__ == "__main__":
    main()
