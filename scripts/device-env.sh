# Sourced by the device scripts: puts the directories of the CUDA libraries the ganime binary ($1) links
# (libcublas.so.13, libcurand.so.10, ... with their exact sonames) on LD_LIBRARY_PATH, wherever the GPU
# machine has them (PyTorch's pip wheels put them under site-packages/nvidia/*/lib).
_ganime_bin=${1:-.devcarry/ganime}
_needed=$(readelf -d "$_ganime_bin" 2>/dev/null | sed -n 's/.*NEEDED.*\[\(lib\(cublas\|cublasLt\|curand\|nvrtc\|cudart\)\.so[^]]*\)\]/\1/p')
echo "CUDA libraries linked: $_needed"
_libdirs=""
for _so in $_needed; do
  _hit=$(timeout 60 find /opt /usr /usr/local / \( -path /proc -o -path /sys -o -path /dev -o -path /run \) -prune \
        -o -name "$_so" -print -quit 2>/dev/null | head -1)
  if [ -n "$_hit" ]; then
    _libdirs="$_libdirs:$(dirname "$_hit")"
  else
    echo "   $_so: not found on this machine"
  fi
done
export LD_LIBRARY_PATH="$(echo "${_libdirs#:}" | tr ':' '\n' | awk 'NF && !seen[$0]++' | paste -sd:)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
