//! The versioned C ABI between ganime and image-editor plug-ins. The types and the generated header arrive
//! with the plug-in issue; the version constant is fixed here so hosts can already check it.

/// Bumped on every incompatible change of the C ABI.
pub const GANIME_ABI_VERSION: u32 = 1;
