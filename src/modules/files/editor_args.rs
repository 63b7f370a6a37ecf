//! Argument types shared by the pure editors (`lineinfile`, `blockinfile`, `ini_file`).

use serde::{Deserialize, Deserializer};

/// `state` of the editors: whether the line/block/option should be in the file or not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    #[default]
    Present,
    Absent,
}

/// Ansible-style lenient deserializers: Ansible converts YAML scalars to the declared type
/// (`value: 0` is the string `"0"`, `create: yes` is `true`). Used through `deserialize_with`.
pub(crate) mod lenient {
    use super::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Bool(bool),
        Int(i64),
        UInt(u64),
        Float(f64),
        Str(String),
    }

    impl Scalar {
        fn into_string(self) -> String {
            match self {
                Scalar::Bool(b) => if b { "True" } else { "False" }.to_string(),
                Scalar::Int(i) => i.to_string(),
                Scalar::UInt(u) => u.to_string(),
                Scalar::Float(f) => f.to_string(),
                Scalar::Str(s) => s,
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<Scalar>),
        One(Scalar),
    }

    /// A boolean written the Ansible way: `true`, `yes`, `on`, `1`, `"True"`...
    pub fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        let text = match Scalar::deserialize(d)? {
            Scalar::Bool(b) => return Ok(b),
            other => other.into_string(),
        };
        if text.is_empty() {
            return Ok(false);
        }
        crate::boolean::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("the value '{text}' is not a valid boolean"))
        })
    }

    /// A string; numbers and booleans are converted to their text.
    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(Scalar::deserialize(d)?.into_string())
    }

    /// An optional string; `null` is `None`.
    pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(Option::<Scalar>::deserialize(d)?.map(Scalar::into_string))
    }

    /// An optional list of strings; a single scalar is a one-element list.
    pub fn opt_string_list<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<String>>, D::Error> {
        Ok(Option::<OneOrMany>::deserialize(d)?.map(|v| match v {
            OneOrMany::Many(items) => items.into_iter().map(Scalar::into_string).collect(),
            OneOrMany::One(item) => vec![item.into_string()],
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Probe {
        #[serde(default, deserialize_with = "lenient::bool")]
        flag: bool,
        #[serde(default, deserialize_with = "lenient::opt_string")]
        text: Option<String>,
        #[serde(default, deserialize_with = "lenient::opt_string_list")]
        list: Option<Vec<String>>,
        #[serde(default)]
        state: State,
    }

    #[test]
    fn lenient_scalars() {
        let p: Probe =
            serde_json::from_str(r#"{"flag":"yes","text":0,"list":[1,"a"],"state":"absent"}"#)
                .unwrap();
        assert!(p.flag);
        assert_eq!(p.text.as_deref(), Some("0"));
        assert_eq!(p.list, Some(vec!["1".to_string(), "a".to_string()]));
        assert_eq!(p.state, State::Absent);
        let p: Probe = serde_json::from_str(r#"{"flag":false,"text":null,"list":"x"}"#).unwrap();
        assert!(!p.flag);
        assert_eq!(p.text, None);
        assert_eq!(p.list, Some(vec!["x".to_string()]));
        assert_eq!(p.state, State::Present);
        assert!(serde_json::from_str::<Probe>(r#"{"flag":"maybe"}"#).is_err());
        assert!(serde_json::from_str::<Probe>(r#"{"state":"gone"}"#).is_err());
    }
}
