#!/usr/bin/env bash
# Software Vulkan (Mesa 25's lavapipe) for podium's webgpu tests, without touching the system.
#
# Why: Dawn (npm `webgpu`) rejects Debian 12's Mesa 22 lavapipe; bookworm-backports' Mesa 25.0.7
# works. We fetch its packages with a private apt configuration (our own sources list, lists and
# cache under the target folder: the system's apt state and installed packages are left as they
# are), unpack them with dpkg-deb into that folder, and write an ICD json that points at the
# unpacked driver by absolute path. The backports entry is derived from the system's Debian
# sources (same URIs, suite bookworm-backports), so whatever mirror the machine uses is used.
#
# Idempotent: a second run finds the driver in place and only prints the environment.
# Usage: eval "$(.ci/setup-vulkan.sh)"    (prints `export VK_DRIVER_FILES=… LD_LIBRARY_PATH=…`)
# Target folder: $PODIUM_VULKAN_DIR, default <repo>/.podium/vulkan (git-ignored).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
dir="${PODIUM_VULKAN_DIR:-$repo/.podium/vulkan}"
root="$dir/root"
icd="$dir/lvp_icd.json"
lib="$root/usr/lib/x86_64-linux-gnu"

# Pinned: the versions Dawn was checked against (docs/gpu.md). The loader (libvulkan1) comes from
# bookworm itself; the rest from bookworm-backports. apt-get download resolves no dependencies,
# so the runtime libraries the driver needs beyond a Debian 12 base are named here (ldd-checked).
packages=(
  mesa-vulkan-drivers=25.0.7-2~bpo12+1
  libdrm2=2.4.123-1~bpo12+1
  libdrm-amdgpu1=2.4.123-1~bpo12+1
  libvulkan1
)

say() { echo "setup-vulkan: $*" >&2; }

if [[ ! -f "$icd" || ! -f "$lib/libvulkan_lvp.so" ]]; then
  [[ "$(dpkg --print-architecture)" == amd64 ]] || { say "only amd64 is supported"; exit 1; }
  src=/etc/apt/sources.list.d/debian.sources
  [[ -f "$src" ]] || { say "$src not found: cannot derive a bookworm-backports entry"; exit 1; }
  apt="$dir/apt"
  mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$apt/sources.list.d" "$dir/debs"
  # The first stanza whose Suites include bookworm (the main archive, not -security), with the
  # suite list replaced by bookworm + bookworm-backports (bookworm for libvulkan1).
  awk 'BEGIN { RS = ""; ORS = "\n\n" }
       /Suites:[^\n]*bookworm( |\n|$)/ && !done {
         gsub(/Suites:[^\n]*/, "Suites: bookworm bookworm-backports"); print; done = 1 }' "$src" >"$apt/sources.list.d/podium-backports.sources"
  grep -q bookworm-backports "$apt/sources.list.d/podium-backports.sources" || { say "no bookworm stanza in $src"; exit 1; }
  opts=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$apt/sources.list.d"
        -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache::Archives=$apt/archives"
        -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=" -o "APT::Get::List-Cleanup=false" -o "APT::Sandbox::User=root")
  say "fetching package lists (private apt state in $apt)"
  apt-get "${opts[@]}" -qq update >&2
  say "downloading ${packages[*]}"
  (cd "$dir/debs" && apt-get "${opts[@]}" -qq download "${packages[@]}" >&2)
  # Also the LLVM the driver links against
  # (its name changes with the Mesa build, so it is read from the package's own dependencies).
  llvm="$(dpkg-deb -f "$dir"/debs/mesa-vulkan-drivers_*.deb Depends | tr ',' '\n' | grep -o 'libllvm[0-9]*' | head -1 || true)"
  if [[ -n "$llvm" ]]; then
    say "downloading $llvm (the driver's LLVM)"
    (cd "$dir/debs" && apt-get "${opts[@]}" -qq -t bookworm-backports download "$llvm" >&2)
  fi
  for deb in "$dir"/debs/*.deb; do dpkg-deb -x "$deb" "$root"; done
  [[ -f "$lib/libvulkan_lvp.so" ]] || { say "libvulkan_lvp.so missing after unpacking"; exit 1; }
  # The packaged ICD names the library by bare file name (found through the system's paths);
  # ours names the unpacked copy by absolute path.
  api="$(sed -n 's/.*"api_version": *"\([^"]*\)".*/\1/p' "$root"/usr/share/vulkan/icd.d/lvp_icd*.json | head -1)"
  printf '{\n  "ICD": { "api_version": "%s", "library_path": "%s" },\n  "file_format_version": "1.0.1"\n}\n' "${api:-1.4.0}" "$lib/libvulkan_lvp.so" >"$icd"
  missing="$(LD_LIBRARY_PATH="$lib" ldd "$lib/libvulkan_lvp.so" | grep 'not found' || true)"
  [[ -z "$missing" ]] || { say "unresolved libraries:"; echo "$missing" >&2; exit 1; }
  say "lavapipe ready in $dir"
fi
echo "export VK_DRIVER_FILES='$icd'"
echo "export LD_LIBRARY_PATH='$lib'\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
