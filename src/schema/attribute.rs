//! Attribute definitions (RFC 7643 §2.2, §7).

use serde::{Deserialize, Serialize};

/// The data type of an attribute (RFC 7643 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AttributeType {
    /// A sequence of characters.
    String,
    /// `true` or `false`.
    Boolean,
    /// A real number.
    Decimal,
    /// A whole number.
    Integer,
    /// An `xsd:dateTime` (RFC 3339) timestamp.
    DateTime,
    /// Base64-encoded bytes.
    Binary,
    /// A URI reference to a resource.
    Reference,
    /// A composition of sub-attributes.
    Complex,
}

impl AttributeType {
    /// The wire spelling (`string`, `dateTime`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            AttributeType::String => "string",
            AttributeType::Boolean => "boolean",
            AttributeType::Decimal => "decimal",
            AttributeType::Integer => "integer",
            AttributeType::DateTime => "dateTime",
            AttributeType::Binary => "binary",
            AttributeType::Reference => "reference",
            AttributeType::Complex => "complex",
        }
    }
}

/// Whether and how an attribute may be modified (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Mutability {
    /// Set by the service provider only.
    ReadOnly,
    /// May be updated and read at any time.
    #[default]
    ReadWrite,
    /// May be set once (at creation, or when it has no value) and never changed.
    Immutable,
    /// May be written but is never returned.
    WriteOnly,
}

/// When an attribute is returned in a response (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Returned {
    /// Always returned, whatever `attributes`/`excludedAttributes` say.
    Always,
    /// Never returned.
    Never,
    /// Returned by default; may be excluded.
    #[default]
    Default,
    /// Returned only when named in `attributes`.
    Request,
}

/// How a value must be unique (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Uniqueness {
    /// No uniqueness.
    #[default]
    None,
    /// Unique within the service provider's current set of resources (per tenant here).
    Server,
    /// Globally unique.
    Global,
}

/// The definition of one attribute or sub-attribute (RFC 7643 §7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributeDef {
    /// The attribute's name, in canonical case.
    pub name: String,
    /// Its data type.
    #[serde(rename = "type")]
    pub ty: AttributeType,
    /// Whether it holds a list of values.
    #[serde(default)]
    pub multi_valued: bool,
    /// A human readable description.
    #[serde(default)]
    pub description: String,
    /// Whether a value is required.
    #[serde(default)]
    pub required: bool,
    /// Whether string values compare case-sensitively.
    #[serde(default)]
    pub case_exact: bool,
    /// Mutability rule.
    #[serde(default)]
    pub mutability: Mutability,
    /// Returned rule.
    #[serde(default)]
    pub returned: Returned,
    /// Uniqueness rule.
    #[serde(default)]
    pub uniqueness: Uniqueness,
    /// Suggested values (informative; RFC 7643 says a service provider MAY accept others).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub canonical_values: Vec<String>,
    /// For references, the resource types or `external`/`uri` it may point at.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reference_types: Vec<String>,
    /// For complex attributes, the sub-attributes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_attributes: Vec<AttributeDef>,
}

impl AttributeDef {
    /// A new single-valued, optional, readWrite, returned-by-default attribute.
    pub fn new(name: impl Into<String>, ty: AttributeType) -> Self {
        AttributeDef {
            name: name.into(),
            ty,
            multi_valued: false,
            description: String::new(),
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            canonical_values: Vec::new(),
            reference_types: Vec::new(),
            sub_attributes: Vec::new(),
        }
    }

    /// A string attribute.
    pub fn string(name: impl Into<String>) -> Self {
        Self::new(name, AttributeType::String)
    }

    /// A boolean attribute.
    pub fn boolean(name: impl Into<String>) -> Self {
        Self::new(name, AttributeType::Boolean)
    }

    /// A dateTime attribute.
    pub fn date_time(name: impl Into<String>) -> Self {
        Self::new(name, AttributeType::DateTime)
    }

    /// A reference attribute pointing at the given reference types.
    pub fn reference(name: impl Into<String>, types: &[&str]) -> Self {
        let mut a = Self::new(name, AttributeType::Reference);
        a.reference_types = types.iter().map(|s| (*s).to_owned()).collect();
        a
    }

    /// A complex attribute with the given sub-attributes.
    pub fn complex(name: impl Into<String>, subs: Vec<AttributeDef>) -> Self {
        let mut a = Self::new(name, AttributeType::Complex);
        a.sub_attributes = subs;
        a
    }

    /// Builder: multi-valued.
    pub fn multi(mut self) -> Self {
        self.multi_valued = true;
        self
    }

    /// Builder: required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Builder: case-exact.
    pub fn case_exact(mut self) -> Self {
        self.case_exact = true;
        self
    }

    /// Builder: set mutability.
    pub fn mutability(mut self, m: Mutability) -> Self {
        self.mutability = m;
        self
    }

    /// Builder: readOnly.
    pub fn read_only(self) -> Self {
        self.mutability(Mutability::ReadOnly)
    }

    /// Builder: set the returned rule.
    pub fn returned(mut self, r: Returned) -> Self {
        self.returned = r;
        self
    }

    /// Builder: set uniqueness.
    pub fn uniqueness(mut self, u: Uniqueness) -> Self {
        self.uniqueness = u;
        self
    }

    /// Builder: set the description.
    pub fn describe(mut self, d: impl Into<String>) -> Self {
        self.description = d.into();
        self
    }

    /// Builder: set canonical values.
    pub fn canonical(mut self, values: &[&str]) -> Self {
        self.canonical_values = values.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Looks a sub-attribute up by name, case-insensitively (RFC 7643 §2.1).
    pub fn sub_attribute(&self, name: &str) -> Option<&AttributeDef> {
        self.sub_attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// True for a complex attribute.
    pub fn is_complex(&self) -> bool {
        self.ty == AttributeType::Complex
    }
}
