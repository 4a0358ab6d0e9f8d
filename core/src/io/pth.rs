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

/// A non-negative integer from the file (a negative one would wrap to a huge `usize`).
fn count(o: Object, what: &str) -> Result<usize> {
    let i = o.int_or_long().map_err(|o| anyhow::anyhow!("{what}: expected an integer, got {}", o.kind()))?;
    usize::try_from(i).map_err(|_| anyhow::anyhow!("{what}: {i} is negative"))
}

fn ints(o: Object, what: &str) -> Result<Vec<usize>> {
    match o {
        Object::Tuple(v) | Object::List(v) => v.into_iter().map(|x| count(x, what)).collect(),
        other => bail!("{what}: expected a tuple of integers, got {}", other.kind()),
    }
}

/// `callable(args)` when `callable` is the class `module.class`.
fn call_of(value: Object, module: &str, class: &str) -> std::result::Result<Vec<Object>, Object> {
    match value {
        Object::Reduce { callable, args } => match (*callable, *args) {
            (Object::Class { module_name, class_name }, Object::Tuple(args)) if module_name == module && class_name == class => Ok(args),
            (callable, args) => Err(Object::Reduce { callable: Box::new(callable), args: Box::new(args) }),
        },
        other => Err(other),
    }
}

fn tensor_ref(value: Object) -> Result<Option<TensorRef>> {
    // nn.Parameter (`_rebuild_parameter(tensor, requires_grad, hooks)`) and tensor subclasses
    // (`_rebuild_from_type_v2(func, type, (tensor args), state)`) wrap the plain tensor recipe.
    let value = match call_of(value, "torch._utils", "_rebuild_parameter") {
        Ok(mut args) if !args.is_empty() => args.swap_remove(0),
        Ok(_) => bail!("bad parameter arguments"),
        Err(value) => value,
    };
    let value = match call_of(value, "torch._tensor", "_rebuild_from_type_v2") {
        Ok(args) if args.len() >= 3 => {
            let mut args = args.into_iter();
            let (func, _type, func_args) = (args.next(), args.next(), args.next());
            Object::Reduce { callable: Box::new(func.unwrap_or(Object::None)), args: Box::new(func_args.unwrap_or(Object::None)) }
        }
        Ok(_) => bail!("bad tensor subclass arguments"),
        Err(value) => value,
    };
    let Ok(mut args) = call_of(value, "torch._utils", "_rebuild_tensor_v2") else { return Ok(None) };
    if args.len() < 4 {
        bail!("bad tensor arguments: {} items", args.len());
    }
    let stride = ints(args.remove(3), "stride")?;
    let shape = ints(args.remove(2), "shape")?;
    let offset = count(args.remove(1), "storage offset")?;
    let pid = args.remove(0).persistent_load().map_err(|o| anyhow::anyhow!("tensor without storage: {}", o.kind()))?;
    let mut pid = pid.tuple().map_err(|o| anyhow::anyhow!("bad storage id: {}", o.kind()))?;
    if pid.len() < 5 {
        bail!("bad storage id with {} fields", pid.len());
    }
    let key = pid.remove(2).unicode().map_err(|o| anyhow::anyhow!("bad storage key: {}", o.kind()))?;
    let (_, class) = pid.remove(1).class().map_err(|o| anyhow::anyhow!("bad storage type: {}", o.kind()))?;
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
        // Every count checked: a crafted shape whose product wraps would get too little storage.
        let too_big = || anyhow::anyhow!("{source}: `{name}` has an impossible size (shape {:?}, offset {})", t.shape, t.offset);
        let numel = t.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).ok_or_else(too_big)?;
        if t.stride.len() != t.shape.len() {
            bail!("{source}: `{name}` has {} strides for {} dimensions", t.stride.len(), t.shape.len());
        }
        // Only row-major tensors (what state dicts hold); anything else would need a gather.
        let mut expected = 1usize;
        for (d, s) in t.shape.iter().zip(&t.stride).rev() {
            if *d > 1 && *s != expected {
                bail!("{source}: `{name}` is not contiguous (stride {:?})", t.stride);
            }
            expected = expected.saturating_mul(*d);
        }
        let size = t.dtype.size_in_bytes();
        let start = t.offset.checked_mul(size).ok_or_else(too_big)?;
        let end = t.offset.checked_add(numel).and_then(|n| n.checked_mul(size)).ok_or_else(too_big)?;
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
    // No storage can hold more bytes than the file: a larger count is refused before allocating.
    let file_len = file.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
    let mut r = BufReader::new(file);
    let what = || format!("{source} is not a legacy PyTorch file");
    read_pickle(&mut r).with_context(what)?; // magic number
    let version = read_pickle(&mut r).with_context(what)?;
    match version.int_or_long() {
        Ok(LEGACY_PROTOCOL_VERSION) => {}
        Ok(v) => bail!("{}: unknown protocol version {v}", what()),
        Err(o) => bail!("{}: the protocol version is {}", what(), o.kind()),
    }
    read_pickle(&mut r).with_context(what)?; // sys info
    let obj = read_pickle(&mut r).with_context(|| format!("{source}: cannot parse the pickled object"))?;
    let refs = tensor_refs(state_dict_entries(obj, &source)?, &source)?;
    let keys = match read_pickle(&mut r).with_context(|| format!("{source}: cannot read the storage key list"))? {
        Object::List(v) | Object::Tuple(v) => {
            v.into_iter().map(|k| k.unicode().map_err(|o| anyhow::anyhow!("bad storage key: {}", o.kind()))).collect::<Result<Vec<_>>>()?
        }
        other => bail!("{source}: bad storage key list: {}", other.kind()),
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
        let len = (numel as u64).checked_mul(dtype.size_in_bytes() as u64).filter(|&l| l <= file_len);
        let Some(len) = len else { bail!("{source}: storage {key} claims {numel} elements, more than the file holds") };
        let mut bytes = vec![0u8; len as usize];
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
    let short = || bad("truncated record");
    let (mut count, mut cd) = (le16(b, eocd + 10).ok_or_else(short)?, le32(b, eocd + 16).ok_or_else(short)?);
    if count == 0xFFFF || cd == 0xFFFF_FFFF {
        // Zip64: the locator sits right before the end record and points at the zip64 end record.
        let loc = eocd.checked_sub(20).filter(|&l| b[l..].starts_with(b"PK\x06\x07")).ok_or_else(|| bad("no zip64 locator"))?;
        let z = usize::try_from(le64(b, loc + 8).ok_or_else(short)?).map_err(|_| bad("zip64 record offset"))?;
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
        let field16 = |off: usize| le16(b, at + off).ok_or_else(|| bad("short entry"));
        let method = field16(10)?;
        let (mut csize, mut usize_) = (le32(b, at + 20).ok_or_else(|| bad("short entry"))?, le32(b, at + 24).ok_or_else(|| bad("short entry"))?);
        let (n, e, c) = (field16(28)? as usize, field16(30)? as usize, field16(32)? as usize);
        let mut offset = le32(b, at + 42).ok_or_else(|| bad("short entry"))?;
        let name = String::from_utf8_lossy(b.get(at + 46..at + 46 + n).ok_or_else(|| bad("short entry name"))?).into_owned();
        // Zip64 extra field (id 1): the 64-bit values of the fields saturated above, in this order.
        let extra = b.get(at + 46 + n..at + 46 + n + e).ok_or_else(|| bad("short extra field"))?;
        let mut x = 0;
        while x + 4 <= extra.len() {
            let (Some(id), Some(len)) = (le16(extra, x), le16(extra, x + 2).map(|l| l as usize)) else { break };
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
        let lh = usize::try_from(offset).map_err(|_| bad("bad local header offset"))?;
        if !b.get(lh..).is_some_and(|s| s.starts_with(b"PK\x03\x04")) {
            return Err(bad("bad local header"));
        }
        let (name_len, extra_len) = (le16(b, lh + 26).ok_or_else(short)?, le16(b, lh + 28).ok_or_else(short)?);
        let start = lh + 30 + name_len as usize + extra_len as usize;
        let end = usize::try_from(csize).ok().and_then(|c| start.checked_add(c)).ok_or_else(|| bad("entry size"))?;
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

/// A zip archive of stored (uncompressed) entries, as `torch.save` writes them: for tests and the fuzz corpus,
/// which craft `.pth` files.
pub fn stored_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut directory = Vec::new();
    for (name, data) in entries {
        let mut crc = flate2::Crc::new();
        crc.update(data);
        // Version 2.0, no flags, stored, no timestamp; then CRC-32, both sizes, name length, no extra field.
        let mut fields = vec![20, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        fields.extend(crc.sum().to_le_bytes());
        fields.extend((data.len() as u32).to_le_bytes());
        fields.extend((data.len() as u32).to_le_bytes());
        fields.extend((name.len() as u16).to_le_bytes());
        fields.extend([0, 0]);
        directory.extend(b"PK\x01\x02\x14\x00");
        directory.extend(&fields);
        directory.extend([0; 10]); // comment length, disk, internal and external attributes
        directory.extend((out.len() as u32).to_le_bytes());
        directory.extend(name.as_bytes());
        out.extend(b"PK\x03\x04");
        out.extend(&fields);
        out.extend(name.as_bytes());
        out.extend(*data);
    }
    let (at, size) = (out.len() as u32, directory.len() as u32);
    out.extend(&directory);
    out.extend(b"PK\x05\x06\x00\x00\x00\x00");
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend(size.to_le_bytes());
    out.extend(at.to_le_bytes());
    out.extend([0, 0]);
    out
}

/// A pickle of `depth` lists, each inside the previous one (`[[[...]]]`), a few bytes per level.
pub fn nested_list_pickle(depth: usize) -> Vec<u8> {
    let mut p = vec![0x80, 2];
    p.extend(std::iter::repeat_n(b']', depth)); // EMPTY_LIST
    p.extend(std::iter::repeat_n(b'a', depth.saturating_sub(1))); // APPEND each list to the one below it
    p.push(b'.');
    p
}

/// A zip-format `.pth` whose `data.pkl` is [`nested_list_pickle`]: a crafted file for the nesting limit.
pub fn nested_list_pickle_file(depth: usize) -> Vec<u8> {
    stored_zip(&[("archive/data.pkl", &nested_list_pickle(depth))])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::shared::shared_path;

    /// A million nested lists or tuples (zip or legacy file): an error naming the file and the limit. Without the
    /// limit, dropping the parsed object recursed a million times and overflowed the stack (an abort).
    #[test]
    fn deeply_nested_pickles_are_refused_with_the_limit() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let depth = 1_000_000;
        let mut tuples = vec![0x80, 2];
        tuples.extend(std::iter::repeat_n(b'(', depth)); // MARK
        tuples.extend(std::iter::repeat_n(b't', depth)); // TUPLE: everything since the mark
        tuples.push(b'.');
        // Legacy: magic number (LONG1), protocol version 1001 (BININT2), sys info (empty dict), then the object.
        let mut legacy = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.\x80\x02M\xe9\x03.\x80\x02}.".to_vec();
        legacy.extend(nested_list_pickle(depth));
        let cases =
            [("lists.pth", nested_list_pickle_file(depth)), ("tuples.pth", stored_zip(&[("archive/data.pkl", &tuples)])), ("legacy.pth", legacy)];
        for (name, bytes) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes)?;
            let err = format!("{:#}", crate::io::weights::read_tensors(&path, &Device::Cpu).unwrap_err());
            assert!(err.contains(name) && err.contains("deeper than 200 levels"), "{err}");
        }
        // Within the limit the same file parses (and is refused only for holding no tensors).
        let path = dir.path().join("shallow.pth");
        std::fs::write(&path, nested_list_pickle_file(150))?;
        let err = format!("{:#}", read_pth(&path).unwrap_err());
        assert!(err.contains("not a dict of tensors"), "{err}");
        Ok(())
    }

    /// A pickle that doubles a list through its memo at every step (`x = [x, x]`, 60 times) would need 2^60
    /// objects; the copies are bounded instead.
    #[test]
    fn memo_copies_are_bounded() -> Result<()> {
        let mut p = vec![0x80, 2, b']', b'q', 0]; // EMPTY_LIST, BINPUT 0
        for _ in 0..60 {
            p.extend([b'h', 0, b'h', 0, 0x86, b'q', 0]); // BINGET 0, BINGET 0, TUPLE2, BINPUT 0
        }
        p.push(b'.');
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("bomb.pth");
        std::fs::write(&path, stored_zip(&[("archive/data.pkl", &p)]))?;
        let err = format!("{:#}", read_pth(&path).unwrap_err());
        assert!(err.contains("bomb.pth") && err.contains("copies more than"), "{err}");
        Ok(())
    }

    #[test]
    fn legacy_twin_holds_the_same_tensors_as_the_zip_file() -> Result<()> {
        let (Some(zip), Some(legacy)) =
            (shared_path("golden/fast-neural-style-net.pth"), shared_path("golden/fast-neural-style-net-legacy-format.pth"))
        else {
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

    /// Crafted and damaged files (every truncation point class, random byte flips, and counts set to huge
    /// values) give errors, never a panic, an abort or a huge allocation: the regression corpus of the reader.
    #[test]
    fn damaged_files_are_errors_not_crashes() -> Result<()> {
        use rand::{Rng, SeedableRng};
        let (Some(zip), Some(legacy)) =
            (shared_path("golden/fast-neural-style-net.pth"), shared_path("golden/fast-neural-style-net-legacy-format.pth"))
        else {
            return Ok(());
        };
        let dir = tempfile::tempdir()?;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(22);
        let mut cases = 0;
        for original in [std::fs::read(&zip)?, std::fs::read(&legacy)?] {
            let mut variants: Vec<Vec<u8>> = (0..60).map(|k| original[..original.len() * k / 60].to_vec()).collect();
            for _ in 0..150 {
                let mut v = original.clone();
                for _ in 0..rng.random_range(1..4) {
                    let i = rng.random_range(0..v.len());
                    v[i] = if rng.random::<bool>() { rng.random() } else { 0xFF };
                }
                variants.push(v);
            }
            // Eight bytes of 0xFF (a huge little-endian count, size or offset) or of 0x00, where the structure
            // is: the pickles at the head (legacy: also the storage counts) and the zip directory at the tail.
            let n = original.len();
            let head = (0..6000.min(n - 8)).step_by(7);
            let tail = (n.saturating_sub(1500)..n - 8).step_by(3);
            for (k, at) in head.chain(tail).enumerate() {
                let mut v = original.clone();
                v[at..at + 8].fill(if k % 2 == 0 { 0xFF } else { 0x00 });
                variants.push(v);
            }
            for v in variants {
                let file = dir.path().join("m.pth");
                std::fs::write(&file, &v)?;
                let ok = std::panic::catch_unwind(|| {
                    let _ = read_pth(&file);
                    let _ = crate::io::weights::read_tensors(&file, &Device::Cpu);
                });
                assert!(ok.is_ok(), "reading a damaged copy panicked (case {cases}, {} bytes)", v.len());
                cases += 1;
            }
        }
        assert!(cases > 2000, "{cases}");
        Ok(())
    }
}
