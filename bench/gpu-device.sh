#!/usr/bin/env bash
# The whole GPU check of the webgpu backend on a lent GPU machine, in one go, within 10 minutes.
#
# That machine has no Node and no npm registry, so the check travels as one archive made here:
#
#   bench/gpu-device.sh --pack      # here, after npm ci: writes .podium/device/podium-device.tar.zst
#                                   # (this Node binary, dist/, the runtime node_modules, the Vulkan
#                                   # loader from .ci/setup-vulkan.sh), < 64 MiB, and prints how to run it
#   bench/gpu-device.sh             # there (repo root; carry .podium/device/podium-device.tar.zst,
#                                   # the tree and the archive must stay under 64 MiB): unpacks, then
#
# 1. what the machine has: nvidia-smi, the Vulkan ICDs found (NVIDIA's is in libGLX_nvidia.so.0;
#    when no nvidia_icd.json is installed one is written), vulkaninfo --summary when present, and
#    the adapters Dawn sees — with the loader's own diagnostics when Dawn sees none;
# 2. npm run test:gpu (parity, training, stages, verify) on that adapter;
# 3. node bench/train.mjs --backend webgpu: train 128/224 px and inference img/s;
# 4. the same model (MobileNetV2, batch 32, SGD momentum) in PyTorch on the same GPU, when
#    PyTorch (and torchvision) are installed there.
# Everything printed also goes to $OUT/gpu-check.log. Sections have their own time limits so that
# one hang does not eat the others' time. PODIUM_CHECK_QUICK=1 runs the bench with --quick.
set -uo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
dev="$repo/.podium/device"
pack="$dev/podium-device.tar.zst"

if [[ "${1:-}" == "--pack" ]]; then
  set -e
  [[ -d "$repo/node_modules" ]] || { echo "run npm ci first" >&2; exit 1; }
  (cd "$repo" && npm run build >/dev/null)   # dist/ from the sources as they are now
  vk="$repo/.podium/vulkan/root/usr/lib/x86_64-linux-gnu"
  [[ -f "$vk/libvulkan.so.1" ]] || "$repo/.ci/setup-vulkan.sh" >/dev/null
  stage="$(mktemp -d)"
  trap 'rm -rf "$stage"' EXIT
  mkdir -p "$stage/.podium/device/bin" "$stage/.podium/device/lib" "$dev"
  cp "$(command -v node)" "$stage/.podium/device/bin/node"
  # The Khronos loader only (Debian's libvulkan1): the GPU's own driver is the ICD there.
  cp -L "$vk/libvulkan.so.1" "$stage/.podium/device/lib/"
  # Runtime modules only: build tools (binaryen, typescript, assemblyscript, playwright), the umbrella
  # @tensorflow/tfjs with its webgl/converter/data backends (podium imports none of them),
  # source maps, tfjs's compiled tests and browser bundles (Node loads each package's `main`),
  # type declarations, other platforms' prebuilt binaries and the nsfwjs weights podium does not use
  # (InceptionV3: not in the GPU check; mobilenet_v2_mid: never) stay here.
  tar -C "$repo" -cf - \
    --exclude='*.map' --exclude='node_modules/binaryen' --exclude='node_modules/typescript' \
    --exclude='node_modules/@typescript' --exclude='node_modules/assemblyscript' \
    --exclude='node_modules/@tensorflow/tfjs' --exclude='node_modules/@tensorflow/tfjs-backend-webgl' \
    --exclude='node_modules/@tensorflow/tfjs-converter' --exclude='node_modules/@tensorflow/tfjs-data' \
    --exclude='node_modules/webgpu/dist/darwin-*' --exclude='node_modules/webgpu/dist/win32-*' \
    --exclude='node_modules/webgpu/dist/linux-arm64' --exclude='node_modules/nsfwjs/dist/models/inception_v3' --exclude='node_modules/nsfwjs/dist/models/mobilenet_v2_mid' \
    --exclude='node_modules/core-js' --exclude='node_modules/.cache' --exclude='node_modules/playwright-core' \
    --exclude='*_test.js' --exclude='*.d.ts' --exclude='*.d.mts' --exclude='*.d.cts' \
    --exclude='node_modules/@tensorflow/*/dist/*.min.js' --exclude='node_modules/@tensorflow/*/dist/*.es2017.js' \
    --exclude='node_modules/@tensorflow/*/dist/*.fesm.js' \
    --exclude='node_modules/@julusian/jpeg-turbo/prebuilds/*-arm*' --exclude='node_modules/@julusian/jpeg-turbo/prebuilds/*-win32-*' \
    --exclude='node_modules/@julusian/jpeg-turbo/prebuilds/*-darwin-*' --exclude='node_modules/@julusian/jpeg-turbo/prebuilds/*-musl' \
    node_modules dist | tar -C "$stage" -xf -
  # tfjs's per-file ES modules are its `module` entry, for bundlers; Node (and vitest, which
  # leaves node_modules to Node) loads the single `main` bundle, *.node.js.
  find "$stage"/node_modules/@tensorflow/*/dist -name '*.js' ! -name '*.node.js' -delete
  tar -C "$stage" -cf - . | zstd -q -19 -T0 -o "$pack" -f
  tree="$(cd "$repo" && git ls-files -z | xargs -0 stat -c %s | awk '{s += $1} END {print s}')"
  total=$(( $(stat -c %s "$pack") + tree ))
  echo "wrote $pack: $(( $(stat -c %s "$pack") >> 20 )) MiB, with the tracked tree $(( total >> 20 )) MiB of the 64 MiB that may travel"
  (( total < 64 << 20 )) || { echo "too large to travel: leave more out" >&2; exit 1; }
  echo "on the GPU machine: bash bench/gpu-device.sh   (carry: .podium/device/podium-device.tar.zst)"
  exit 0
fi

out="${OUT:-$repo/.podium/gpu-check}"
mkdir -p "$out"
exec > >(tee "$out/gpu-check.log") 2>&1
section() { echo; echo "=== $* ($(date -u +%H:%M:%S))"; }

section "unpacking"
if [[ ! -x "$dev/bin/node" || "$pack" -nt "$dev/bin/node" ]]; then
  [[ -f "$pack" ]] || { echo "no $pack: make it with bench/gpu-device.sh --pack and carry .podium/device"; exit 1; }
  if command -v zstd >/dev/null; then zstd -q -d -c "$pack" | tar -C "$repo" -xf -
  else tar -C "$repo" --use-compress-program='python3 -c "import sys,zstandard;zstandard.ZstdDecompressor().copy_stream(sys.stdin.buffer,sys.stdout.buffer)"' -xf "$pack"; fi
fi
export PATH="$dev/bin:$PATH"
export LD_LIBRARY_PATH="$dev/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
node --version || { echo "the carried node does not run here"; exit 1; }

section "GPU"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || echo "nvidia-smi: not available"

section "Vulkan ICDs"
icds=()
# /usr/local/nvidia/…: where the lent machines' NVIDIA container runtime puts the driver's json.
for d in /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/share/vulkan/icd.d /usr/local/nvidia/share/vulkan/icd.d; do
  for f in "$d"/*.json; do [[ -f "$f" ]] && icds+=("$f") && echo "$f: $(tr -d '\n ' <"$f" | head -c 200)"; done
done
nv="$(printf '%s\n' "${icds[@]}" | grep -i nvidia | head -1)"
if [[ -n "$nv" && -z "${VK_DRIVER_FILES:-}" ]]; then
  export VK_DRIVER_FILES="$nv"   # the loader does not search /usr/local/nvidia by itself
  echo "using $nv"
elif [[ -z "$nv" ]]; then
  # NVIDIA's Vulkan driver ships inside libGLX_nvidia.so.0; containers often lack its json.
  glx="$(ldconfig -p 2>/dev/null | awk '/libGLX_nvidia.so.0/ {print $NF; exit}')"
  [[ -n "$glx" ]] || glx="$(ls /usr/lib/x86_64-linux-gnu/libGLX_nvidia.so.0 /usr/lib64/libGLX_nvidia.so.0 2>/dev/null | head -1)"
  if [[ -n "$glx" ]]; then
    printf '{ "file_format_version": "1.0.0", "ICD": { "library_path": "%s", "api_version": "1.3.0" } }\n' "$glx" >"$dev/nvidia_icd.json"
    export VK_DRIVER_FILES="$dev/nvidia_icd.json"
    echo "no nvidia_icd.json installed: wrote $VK_DRIVER_FILES for $glx"
  else
    echo "NVIDIA's Vulkan ICD not found (no nvidia_icd.json, no libGLX_nvidia.so.0): the container lacks the driver's graphics part"
    echo "libraries of the NVIDIA driver present: $(ldconfig -p 2>/dev/null | grep -c nvidia)"; ldconfig -p 2>/dev/null | grep -i nvidia | head -20
  fi
fi
command -v vulkaninfo >/dev/null && timeout 30 vulkaninfo --summary 2>&1 | head -40 || echo "vulkaninfo: not installed"

section "what Dawn sees"
# The adapters Dawn offers, as tfjs-backend-webgpu would ask for them.
cat >"$dev/probe.mjs" <<'JS'
const { create, globals } = await import("webgpu");
Object.assign(globalThis, globals);
const gpu = create((process.env.PODIUM_DAWN_OPTIONS ?? "").split(/\s+/).filter(Boolean));
for (const powerPreference of ["high-performance", "low-power"]) {
  const a = await gpu.requestAdapter({ powerPreference });
  const i = a?.info;
  console.log(powerPreference, a ? JSON.stringify({ vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description, fallback: i.isFallbackAdapter }) : "no adapter");
}
process.exit(0);
JS
seen="$(cd "$repo" && timeout 30 node "$dev/probe.mjs" 2>&1 | grep -v 'artificially reduced')"
echo "$seen"
if ! grep -q '"vendor"' <<<"$seen"; then
  echo "Dawn sees no adapter; the Vulkan loader's own account:"
  (cd "$repo" && VK_LOADER_DEBUG=error,warn,driver timeout 30 node "$dev/probe.mjs" 2>&1 | grep -v 'artificially reduced' | head -60)
  [[ -n "${VK_DRIVER_FILES:-}" ]] && ldd "$(sed -n 's/.*"library_path": *"\([^"]*\)".*/\1/p' "$VK_DRIVER_FILES")" 2>&1 | grep -i 'not found'
  exit 1
fi
grep -q '"fallback":true' <<<"$seen" && echo "note: a software (fallback) adapter: figures below are not a GPU's"

section "npm run test:gpu"
(cd "$repo" && timeout 240 node node_modules/vitest/vitest.mjs run --config vitest.gpu.config.ts 2>&1 | grep -v 'artificially reduced'; exit "${PIPESTATUS[0]}") || echo "test:gpu: failed or timed out (status $?)"

section "bench/train.mjs --backend webgpu"
quick=(); [[ "${PODIUM_CHECK_QUICK:-}" == 1 ]] && quick=(--quick)
(cd "$repo" && timeout 180 node bench/train.mjs --backend webgpu "${quick[@]}" 2>&1 | grep -v 'artificially reduced'; exit "${PIPESTATUS[0]}") || echo "bench: failed or timed out (status $?)"

section "PyTorch on the same GPU"
if python3 -c 'import torch, torchvision' 2>/dev/null; then
  timeout 90 python3 - <<'PY' || echo "PyTorch bench: failed or timed out"
# MobileNetV2 (torchvision, random weights: throughput does not depend on them), 6 classes,
# batch 32, SGD momentum 0.9, weight decay 1e-4: the recipe of bench/train.mjs.
import time, torch, torchvision
dev = "cuda" if torch.cuda.is_available() else "cpu"
print("torch", torch.__version__, "device", dev, torch.cuda.get_device_name(0) if dev == "cuda" else "")
def sync():
    if dev == "cuda": torch.cuda.synchronize()
def train(size, steps=10):
    m = torchvision.models.mobilenet_v2(num_classes=6).to(dev).train()
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    x = torch.rand(32, 3, size, size, device=dev); y = torch.arange(32, device=dev) % 6
    for i in range(steps + 2):
        if i == 2: sync(); t = time.perf_counter()
        opt.zero_grad(); torch.nn.functional.cross_entropy(m(x), y).backward(); opt.step()
    sync(); return steps * 32 / (time.perf_counter() - t)
def infer(size, steps=20):
    m = torchvision.models.mobilenet_v2(num_classes=6).to(dev).eval()
    x = torch.rand(32, 3, size, size, device=dev)
    with torch.no_grad():
        for i in range(steps + 2):
            if i == 2: sync(); t = time.perf_counter()
            m(x)
    sync(); return steps * 32 / (time.perf_counter() - t)
print(f"train 128 px, batch 32  {train(128):8.1f} img/s")
print(f"infer 224 px, batch 32  {infer(224):8.1f} img/s")
print(f"train 224 px, batch 32  {train(224):8.1f} img/s")
PY
else
  echo "PyTorch with torchvision is not installed here: no reference figures"
fi
section "done"
