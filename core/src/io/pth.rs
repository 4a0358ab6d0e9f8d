//! PyTorch `torch.save` files that Candle's reader cannot open, read with Candle's pickle VM
//! (`candle_core::pickle::Stack`) and a small container reader here:
//!
//! - the legacy (pre-1.6, non-zip) format of the 2017 fast-neural-style downloads and other old checkpoints
//!   (torch/serialization.py `_legacy_save`): five pickles — magic number, protocol version, sys info, the object
//!   (tensors refer to storages by persistent id `('storage', StorageClass, key, location, numel, ...)`), the
//!   list of storage keys — then, for each key in that order, an i64 element count and the raw storage bytes;
//! - the zip format, whose entries torch always writes *stored* (uncompressed): `ARCHIVE/data.pkl` plus one
//!   `ARCHIVE/data/KEY` per storage. The `zip` crate version Candle 0.11.1 resolves to (9.8) rejects some of
//!   these files ("Invalid Central Directory header", e.g. the shared VGG19 and TransformerNet goldens) although
//!   Python's zipfile and torch read them; reading the few fixed headers here avoids that.

use anyhow::{bail, Context, Result};
use candle_core::pickle::{Object, Stack};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::path::Path;

/// The protocol version torch writes second in a legacy file (the first pickle, the magic number
/// 0x1950a86a20f9469cfc6c, does not fit candle's 64-bit LONG1 decoding, so the version is what is checked).
const LEGACY_PROTOCOL_VERSION: i64 = 1001;

fn read_pickle(r: &mut impl std::io::BufRead) -> Result<Object> {
    let mut stack = Stack::empty();
    stack.read_loop(r)?;
    Ok(stack.finalize()?)
}

/// A tensor's recipe: storage key, dtype, element offset, shape, strides.
struct TensorRef {
    key: String,
    dtype: DType,
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

fn ints(o: Object) -> Result<Vec<usize>> {
    match o {
        Object::Tuple(v) | Object::List(v) => v
            .into_iter()
            .map(|x| x.int_or_long().map(|i| i as usize).map_err(|o| anyhow::anyhow!("expected an integer, got {o:?}")))
            .collect(),
        other => bail!("expected a tuple of integers, got {other:?}"),
    }
}

fn tensor_ref(value: Object) -> Result<Option<TensorRef>> {
    let Ok((callable, args)) = value.reduce() else { return Ok(None) };
    match &callable {
        Object::Class { module_name, class_name } if module_name == "torch._utils" && class_name == "_rebuild_tensor_v2" => {}
        _ => return Ok(None),
    }
    let mut args = args.tuple().map_err(|o| anyhow::anyhow!("bad tensor arguments {o:?}"))?;
    if args.len() < 4 {
        bail!("bad tensor arguments: {} items", args.len());
    }
    let stride = ints(args.remove(3))?;
    let shape = ints(args.remove(2))?;
    let offset = args.remove(1).int_or_long().map_err(|o| anyhow::anyhow!("bad storage offset {o:?}"))? as usize;
    let pid = args.remove(0).persistent_load().map_err(|o| anyhow::anyhow!("tensor without storage: {o:?}"))?;
    let mut pid = pid.tuple().map_err(|o| anyhow::anyhow!("bad storage id {o:?}"))?;
    if pid.len() < 5 {
        bail!("bad storage id with {} fields", pid.len());
    }
    let key = pid.remove(2).unicode().map_err(|o| anyhow::anyhow!("bad storage key {o:?}"))?;
    let (_, class) = pid.remove(1).class().map_err(|o| anyhow::anyhow!("bad storage type {o:?}"))?;
    let dtype = match class.as_str() {
        "FloatStorage" => DType::F32,
        "DoubleStorage" => DType::F64,
        "HalfStorage" => DType::F16,
        "BFloat16Storage" => DType::BF16,
        "LongStorage" => DType::I64,
        "ByteStorage" => DType::U8,
        other => bail!("unsupported storage type {other}"),
    };
    Ok(Some(TensorRef { key, dtype, offset, shape, stride }))
}

/// Unwraps the pickled top-level object to the `(name, value)` entries of its state dict: an OrderedDict
/// with `_metadata` arrives as BUILD(dict, state); a checkpoint dict may hold it under `state_dict`.
fn state_dict_entries(mut obj: Object, source: &str) -> Result<Vec<(Object, Object)>> {
    if let Object::Build { callable, .. } = obj {
        obj = *callable;
    }
    let mut entries = obj.dict().map_err(|_| anyhow::anyhow!("{source}: the pickled object is not a dict of tensors"))?;
    if let Some(pos) = entries.iter().position(|(k, _)| *k == Object::Unicode("state_dict".into())) {
        let mut inner = entries.swap_remove(pos).1;
        if let Object::Build { callable, .. } = inner {
            inner = *callable;
        }
        entries = inner.dict().map_err(|_| anyhow::anyhow!("{source}: `state_dict` is not a dict"))?;
    }
    Ok(entries)
}

fn tensor_refs(entries: Vec<(Object, Object)>, source: &str) -> Result<Vec<(String, TensorRef)>> {
    let mut refs = Vec::new();
    for (name, value) in entries {
        let Ok(name) = name.unicode() else { continue };
        if let Some(t) = tensor_ref(value).with_context(|| format!("{source}: tensor `{name}`"))? {
            refs.push((name, t));
        }
    }
    Ok(refs)
}

/// Builds the tensors from their recipes and the raw storages (by key).
fn assemble<'a>(refs: Vec<(String, TensorRef)>, storage: impl Fn(&str) -> Option<&'a [u8]>, source: &str) -> Result<HashMap<String, Tensor>> {
    let mut out = HashMap::new();
    for (name, t) in refs {
        let bytes = storage(&t.key).with_context(|| format!("{source}: storage {} of `{name}` is missing", t.key))?;
        let numel: usize = t.shape.iter().product();
        // Only row-major tensors (what state dicts hold); anything else would need a gather.
        let mut expected = 1;
        for (d, s) in t.shape.iter().zip(&t.stride).rev() {
            if *d > 1 && *s != expected {
                bail!("{source}: `{name}` is not contiguous (stride {:?})", t.stride);
            }
            expected *= d;
        }
        let size = t.dtype.size_in_bytes();
        let (start, end) = (t.offset * size, (t.offset + numel) * size);
        if end > bytes.len() {
            bail!("{source}: `{name}` reads past its storage");
        }
        out.insert(name, Tensor::from_raw_buffer(&bytes[start..end], t.dtype, &t.shape, &Device::Cpu)?);
    }
    Ok(out)
}

/// All tensors of a `torch.save`d state dict (legacy or zip format), by name.
pub fn read_pth(path: &Path) -> Result<HashMap<String, Tensor>> {
    super::weights::check_model_file(path, "weights file")?;
    if is_legacy(path) {
        read_legacy(path)
    } else {
        read_zip(path)
    }
}

fn read_legacy(path: &Path) -> Result<HashMap<String, Tensor>> {
    let source = path.display().to_string();
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {source}"))?;
    let mut r = BufReader::new(file);
    let what = || format!("{source} is not a legacy PyTorch file");
    read_pickle(&mut r).with_context(what)?; // magic number
    let version = read_pickle(&mut r).with_context(what)?;
    if version.clone().int_or_long().ok() != Some(LEGACY_PROTOCOL_VERSION) {
        bail!("{}: unknown protocol version {version:?}", what());
    }
    read_pickle(&mut r).with_context(what)?; // sys info
    let obj = read_pickle(&mut r).with_context(|| format!("{source}: cannot parse the pickled object"))?;
    let refs = tensor_refs(state_dict_entries(obj, &source)?, &source)?;
    let keys = match read_pickle(&mut r).with_context(|| format!("{source}: cannot read the storage key list"))? {
        Object::List(v) | Object::Tuple(v) => v
            .into_iter()
            .map(|k| k.unicode().map_err(|o| anyhow::anyhow!("bad storage key {o:?}")))
            .collect::<Result<Vec<_>>>()?,
        other => bail!("{source}: bad storage key list {other:?}"),
    };
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    for key in keys {
        let dtype = refs.iter().find(|(_, t)| t.key == key).map(|(_, t)| t.dtype);
        let mut n = [0u8; 8];
        r.read_exact(&mut n).with_context(|| format!("{source}: truncated before storage {key}"))?;
        let numel = i64::from_le_bytes(n);
        if numel < 0 {
            bail!("{source}: storage {key} has a negative size");
        }
        let Some(dtype) = dtype else { bail!("{source}: storage {key} is used by no tensor; cannot tell its element size") };
        let mut bytes = vec![0u8; numel as usize * dtype.size_in_bytes()];
        r.read_exact(&mut bytes).with_context(|| format!("{source}: truncated in storage {key}"))?;
        storages.insert(key, bytes);
    }
    assemble(refs, |k| storages.get(k).map(Vec::as_slice), &source)
}

fn le16(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 2).map(|s| u16::from_le_bytes([s[0], s[1]]) as u64)
}
fn le32(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 4).map(|s| u32::from_le_bytes(s.try_into().unwrap()) as u64)
}
fn le64(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8).map(|s| u64::from_le_bytes(s.try_into().unwrap()))
}

/// The stored (uncompressed) entries of a zip archive: name -> byte range of its data.
fn zip_entries(b: &[u8], source: &str) -> Result<HashMap<String, std::ops::Range<usize>>> {
    let bad = |what: &str| anyhow::anyhow!("{source}: not a readable zip archive ({what})");
    let tail = b.len().saturating_sub(22 + 65_535);
    let eocd = (tail..b.len().saturating_sub(21)).rev().find(|&i| b[i..].starts_with(b"PK\x05\x06")).ok_or_else(|| bad("no end record"))?;
    let (mut count, mut cd) = (le16(b, eocd + 10).unwrap(), le32(b, eocd + 16).unwrap());
    if count == 0xFFFF || cd == 0xFFFF_FFFF {
        // Zip64: the locator sits right before the end record and points at the zip64 end record.
        let loc = eocd.checked_sub(20).filter(|&l| b[l..].starts_with(b"PK\x06\x07")).ok_or_else(|| bad("no zip64 locator"))?;
        let z = le64(b, loc + 8).unwrap() as usize;
        if !b.get(z..).is_some_and(|s| s.starts_with(b"PK\x06\x06")) {
            return Err(bad("no zip64 end record"));
        }
        count = le64(b, z + 32).ok_or_else(|| bad("short zip64 record"))?;
        cd = le64(b, z + 48).ok_or_else(|| bad("short zip64 record"))?;
    }
    let mut entries = HashMap::new();
    let mut at = cd as usize;
    for _ in 0..count {
        if !b.get(at..).is_some_and(|s| s.starts_with(b"PK\x01\x02")) {
            return Err(bad("bad central directory entry"));
        }
        let method = le16(b, at + 10).unwrap();
        let (mut csize, mut usize_) = (le32(b, at + 20).ok_or_else(|| bad("short entry"))?, le32(b, at + 24).unwrap());
        let (n, e, c) = (le16(b, at + 28).unwrap() as usize, le16(b, at + 30).unwrap() as usize, le16(b, at + 32).unwrap() as usize);
        let mut offset = le32(b, at + 42).ok_or_else(|| bad("short entry"))?;
        let name = String::from_utf8_lossy(b.get(at + 46..at + 46 + n).ok_or_else(|| bad("short entry name"))?).into_owned();
        // Zip64 extra field (id 1): the 64-bit values of the fields saturated above, in this order.
        let extra = b.get(at + 46 + n..at + 46 + n + e).ok_or_else(|| bad("short extra field"))?;
        let mut x = 0;
        while x + 4 <= extra.len() {
            let (id, len) = (le16(extra, x).unwrap(), le16(extra, x + 2).unwrap() as usize);
            if id == 1 {
                let mut f = x + 4;
                for v in [&mut usize_, &mut csize, &mut offset] {
                    if *v == 0xFFFF_FFFF {
                        *v = le64(extra, f).ok_or_else(|| bad("short zip64 field"))?;
                        f += 8;
                    }
                }
            }
            x += 4 + len;
        }
        if method != 0 || csize != usize_ {
            bail!("{source}: zip entry {name} is compressed; torch writes stored entries only");
        }
        let lh = offset as usize;
        if !b.get(lh..).is_some_and(|s| s.starts_with(b"PK\x03\x04")) {
            return Err(bad("bad local header"));
        }
        let start = lh + 30 + le16(b, lh + 26).unwrap() as usize + le16(b, lh + 28).unwrap() as usize;
        let end = start + csize as usize;
        if end > b.len() {
            return Err(bad("entry past the end of the file"));
        }
        entries.insert(name, start..end);
        at += 46 + n + e + c;
    }
    Ok(entries)
}

fn read_zip(path: &Path) -> Result<HashMap<String, Tensor>> {
    let source = path.display().to_string();
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {source}"))?;
    let entries = zip_entries(&bytes, &source)?;
    let (pkl, range) = entries
        .iter()
        .find(|(k, _)| k.ends_with("data.pkl"))
        .with_context(|| format!("{source}: no data.pkl in the archive; not a torch.save file"))?;
    let dir = pkl.strip_suffix("data.pkl").unwrap_or("").to_string();
    let obj = read_pickle(&mut &bytes[range.clone()]).with_context(|| format!("{source}: cannot parse {pkl}"))?;
    let refs = tensor_refs(state_dict_entries(obj, &source)?, &source)?;
    assemble(refs, |k| entries.get(&format!("{dir}data/{k}")).map(|r| &bytes[r.clone()]), &source)
}

/// True when `path` starts like a legacy torch file (a pickle, not a zip archive).
pub fn is_legacy(path: &Path) -> bool {
    let mut head = [0u8; 2];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok() && head[0] == 0x80 && head[1] <= 5
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::shared::shared_path;

    #[test]
    fn legacy_twin_holds_the_same_tensors_as_the_zip_file() -> Result<()> {
        let (Some(zip), Some(legacy)) = (shared_path("golden/fast-neural-style-net.pth"), shared_path("golden/fast-neural-style-net-legacy-format.pth")) else {
            return Ok(());
        };
        assert!(is_legacy(&legacy) && !is_legacy(&zip));
        let a = read_pth(&zip)?;
        let b = read_pth(&legacy)?;
        assert_eq!(a.len(), b.len());
        for (k, t) in &a {
            let u = &b[k];
            assert_eq!(t.dims(), u.dims(), "{k}");
            assert_eq!((t - u)?.abs()?.sum_all()?.to_scalar::<f32>()?, 0.0, "{k}");
        }
        Ok(())
    }
}
