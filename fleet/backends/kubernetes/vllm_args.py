"""What a vLLM container serves, read from its command line (model, tensor parallel size,
max model length, GPU memory utilization). Plain dicts in, `ServingFacts` out; no `kubernetes`
import. Clusters write vLLM's command line every way argparse and shells allow: `vllm serve
MODEL`, `--model X` / `--model=X`, `python -m vllm.entrypoints.openai.api_server`, the
vllm-openai image's entrypoint, `sh -c "..."`, and `$(VAR)` references to the container's env.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from decimal import Decimal

from fleet.backends.base import one_line
from fleet.backends.kubernetes.values import as_dict, as_list, as_str


@dataclass(frozen=True)
class ServingFacts:
    model: str = ""
    tensor_parallel: int = 1
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    problems: tuple[str, ...] = ()
    dtype: str = ""  # --dtype as written ("" = vLLM's auto)
    quantization: str = ""  # --quantization / -q as written ("" = none given)


_K8S_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_SHELL_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_HUMAN_INT = re.compile(r"^(\d+(?:\.\d+)?)([kKmMgG]?)$")


def command_tokens(container: dict) -> list[str]:
    """command + args as argv, with $(VAR) expanded from literal env values and shell strings
    (`sh -c "vllm serve ..."`) split into words."""
    env_vars = map(as_dict, as_list(container.get("env")))
    env = {as_str(e.get("name")): as_str(e.get("value")) for e in env_vars if "value" in e}
    words = [w for w in [*as_list(container.get("command")), *as_list(container.get("args"))] if isinstance(w, str)]
    out: list[str] = []
    for word in words:
        word = _K8S_VAR.sub(lambda m: env.get(m.group(1), m.group(0)), word)
        if any(ch.isspace() for ch in word.strip()):
            try:
                parts = shlex.split(word)
            except ValueError:
                parts = word.split()
            out += [_SHELL_VAR.sub(lambda m: env.get(m.group(1) or m.group(2), m.group(0)), p) for p in parts]
        else:
            out.append(word)
    return out


def _option(tokens: list[str], *names: str) -> str | None:
    """The last value given for an option (`--x v` or `--x=v`), as argparse reads it."""
    value = None
    for i, token in enumerate(tokens):
        for name in names:
            if token == name and i + 1 < len(tokens):
                value = tokens[i + 1]
            elif token.startswith(name + "="):
                value = token[len(name) + 1 :]
    return value


def _human_int(text: str) -> int | None:
    # vLLM reads --max-model-len like "32k" (x1000) and "32K" (x1024).
    match = _HUMAN_INT.match(text.strip())
    if not match:
        return None
    number, suffix = Decimal(match.group(1)), match.group(2)
    scale = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "K": 2**10, "M": 2**20, "G": 2**30}[suffix]
    value = number * scale
    return int(value) if value == value.to_integral_value() and 0 < value <= 2**31 - 1 else None


def serving_facts(container: dict) -> ServingFacts:
    """What a vLLM container serves, from its command line (`vllm serve MODEL`, `--model X`,
    `--model=X`, `python -m vllm.entrypoints.openai.api_server --model X`, or the vllm-openai
    image's entrypoint with the model as first argument). Empty model when it is not vLLM."""
    tokens = command_tokens(container)
    image = as_str(container.get("image"))
    module = any(t.startswith("vllm.entrypoints") for t in tokens)
    serve_at = next(
        (i for i, t in enumerate(tokens[:-1]) if os.path.basename(t) == "vllm" and tokens[i + 1] == "serve"), None
    )
    image_is_vllm = "vllm" in image.rsplit("/", 1)[-1].split(":")[0] or "vllm-openai" in image
    if serve_at is None and not module and not image_is_vllm:
        return ServingFacts()
    model = ""
    if serve_at is not None and serve_at + 2 < len(tokens) and not tokens[serve_at + 2].startswith("-"):
        model = tokens[serve_at + 2]
    elif not container.get("command") and image_is_vllm and tokens and not tokens[0].startswith("-"):
        model = tokens[0]  # the vllm-openai image's entrypoint is the server itself
    model = model or _option(tokens, "--model") or ""
    problems = []
    tp = 1
    tp_text = _option(tokens, "--tensor-parallel-size", "-tp")
    if tp_text is not None:
        if tp_text.isdigit() and 1 <= int(tp_text) <= 1024:
            tp = int(tp_text)
        else:
            problems.append(f"--tensor-parallel-size {one_line(tp_text, 20)!r} is not a number; read as 1")
    max_len = None
    len_text = _option(tokens, "--max-model-len")
    if len_text is not None:
        max_len = _human_int(len_text)
        if max_len is None:
            problems.append(f"--max-model-len {one_line(len_text, 20)!r} is not a number")
    gmu = None
    gmu_text = _option(tokens, "--gpu-memory-utilization")
    if gmu_text is not None:
        try:
            gmu = float(gmu_text)
        except ValueError:
            gmu = None
        if gmu is None or not 0 < gmu <= 1:
            problems.append(f"--gpu-memory-utilization {one_line(gmu_text, 20)!r} is not a fraction in (0, 1]")
            gmu = None
    if len(model) > 300:
        problems.append("the model name is longer than 300 characters; cut")
        model = model[:300]
    dtype = _word_option(tokens, problems, "--dtype")
    quantization = _word_option(tokens, problems, "--quantization", "-q")
    return ServingFacts(one_line(model, 300) if model else "", tp, max_len, gmu, tuple(problems), dtype, quantization)


_WORD = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


def _word_option(tokens: list[str], problems: list[str], *names: str) -> str:
    """A one-word option such as `--dtype bfloat16` or `--quantization awq`, lower-cased; "" when
    absent or not a plain word (said in `problems`)."""
    text = _option(tokens, *names)
    if text is None:
        return ""
    if not _WORD.match(text):
        problems.append(f"{names[0]} {one_line(text, 20)!r} is not a plain word; ignored")
        return ""
    return text.lower()
