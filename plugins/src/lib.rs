//! The cdylib implementing the ganime plug-in ABI over the core library, and the GIMP / Krita host scripts.
//! Filled by the plug-in issue; for now it only re-exports the ABI version it is built against.

pub use ganime_plugin_abi::GANIME_ABI_VERSION;
