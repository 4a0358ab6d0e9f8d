//! Command-line names for the field-less enums of the inference layers (`VggArch`, `Preset`, …): `FromStr`
//! and `Display` from one list, so the CLI parses them (clap takes any `FromStr`) while `models/`, `nn/` and
//! `generate/` stay free of the CLI library, which the editor plug-in does not need.

/// `named_values!(Type { Variant => "name", … })`: `Type::NAMES`, `FromStr` (an unknown name is an error
/// listing the known ones) and `Display` (the name).
#[macro_export]
macro_rules! named_values {
    ($ty:ty { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// The names the command line accepts, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($name),+];
        }
        impl std::str::FromStr for $ty {
            type Err = std::string::String;
            fn from_str(s: &str) -> std::result::Result<Self, String> {
                match s {
                    $($name => Ok(Self::$variant),)+
                    _ => Err(format!("'{s}' is not one of: {}", Self::NAMES.join(", "))),
                }
            }
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(match self {
                    $(Self::$variant => $name,)+
                })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use crate::models::dcgan::Preset;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_known_ones() {
        for name in Preset::NAMES {
            assert_eq!(name.parse::<Preset>().unwrap().to_string(), *name);
        }
        let err = "radford".parse::<Preset>().unwrap_err();
        assert!(err.contains("radford64") && err.contains("wide128"), "{err}");
    }
}
