#!/usr/bin/env bash
# Puts NVIDIA's PTX assembler and SASS disassembler (ptxas, cuobjdump, nvdisasm from CUDA 11.8) into a
# folder, so that `blockdance ptx` can assemble ILGPU's PTX for sm_80/sm_90 on a machine with no GPU.
# Source: Debian's non-free package nvidia-cuda-toolkit (bookworm ships CUDA 11.8). The package is only
# downloaded and unpacked into a scratch folder: nothing is installed, the machine's apt sources and
# package state are untouched. ptxas 11.8 accepts PTX ISA up to 7.8, which is what PtxCompiler emits.
#   usage: tools/get-ptxas.sh [DEST]      (DEST defaults to ~/.cache/ptxas-11.8; prints the ptxas path)
set -euo pipefail
dest=${1:-$HOME/.cache/ptxas-11.8}
bin=$dest/usr/bin
if [[ -x $bin/ptxas && -x $bin/cuobjdump && -x $bin/nvdisasm ]]; then echo "$bin/ptxas"; exit 0; fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# Debian mirror and release of this machine; a private sources.list adds the non-free component.
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
if [[ -z $mirror ]]; then mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true); fi
release=$(. /etc/os-release; echo "${VERSION_CODENAME:-}")
if [[ -z $mirror || -z $release ]]; then
  echo "get-ptxas: expected a Debian machine with an apt mirror, found none in /etc/apt" >&2; exit 1
fi
echo "deb $mirror $release non-free" > "$scratch/sources.list"
mkdir -p "$scratch/state/lists/partial" "$scratch/cache/archives/partial"
apt_private=(-o "Dir::Etc::SourceList=$scratch/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
             -o "Dir::State=$scratch/state" -o "Dir::Cache=$scratch/cache" -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
apt-get "${apt_private[@]}" -qq update >/dev/null
(cd "$scratch" && apt-get "${apt_private[@]}" -qq download nvidia-cuda-toolkit >/dev/null)
dpkg-deb -x "$scratch"/nvidia-cuda-toolkit_*.deb "$scratch/root"

mkdir -p "$bin"
for tool in ptxas cuobjdump nvdisasm; do
  [[ -f $scratch/root/usr/bin/$tool ]] || { echo "get-ptxas: expected /usr/bin/$tool in the package, found none" >&2; exit 1; }
  install -m 755 "$scratch/root/usr/bin/$tool" "$bin/$tool"
done
"$bin/ptxas" --version | tail -1 >&2
echo "$bin/ptxas"
