//! Structs, enums and errors.

use proc_macro2::TokenStream;
use quote::quote;
use wsp_idl::{Deprecated, Field, Primitive, TypeDef, TypeId, TypeKind, TypeRef, Variant};

use super::PackageGen;
use super::docs::doc_attrs;
use super::names::{camel, field_ident, ident, snake, type_ident};

/// `#[deprecated]` for an item marked `@deprecated`.
pub(crate) fn deprecated_attr(deprecated: &Option<Deprecated>) -> TokenStream {
    match deprecated {
        None => TokenStream::new(),
        Some(Deprecated {
            reason: Some(reason),
        }) => quote!(#[deprecated(note = #reason)]),
        Some(Deprecated { reason: None }) => quote!(#[deprecated]),
    }
}

impl PackageGen<'_> {
    /// One declared type.
    pub(crate) fn type_def(&self, t: &TypeDef) -> TokenStream {
        match &t.kind {
            TypeKind::Struct(fields) => self.struct_def(t, fields),
            TypeKind::Enum(variants) => self.enum_def(t, variants),
            TypeKind::Error(variants) => {
                let def = self.enum_def(t, variants);
                let impls = self.error_impls(t, variants);
                quote!(#def #impls)
            }
        }
    }

    /// The derives and serde attributes every generated type has.
    /// `Eq` and `Hash` too when no float is reachable from the type; `Default` for a struct
    /// whose fields all have one (as prost does), so that user code can write
    /// `Order { sku, ..Default::default() }` without naming a `@deprecated` field.
    fn derives(&self, t: &TypeDef) -> TokenStream {
        let eq_hash = if self.has_float(t.id) {
            TokenStream::new()
        } else {
            quote!(wsp::Eq, wsp::Hash,)
        };
        let default = if self.has_default(t.id) {
            quote!(wsp::Default,)
        } else {
            TokenStream::new()
        };
        quote! {
            #[derive(
                wsp::Debug,
                wsp::Clone,
                wsp::PartialEq,
                #eq_hash
                #default
                wsp::serde::Serialize,
                wsp::serde::Deserialize
            )]
            #[serde(crate = "wsp::serde")]
        }
    }

    /// Whether an `f32` or `f64` is reachable from the type (then it cannot be `Eq`).
    fn has_float(&self, id: TypeId) -> bool {
        let mut seen = std::collections::BTreeSet::new();
        let mut stack = vec![id];
        while let Some(id) = stack.pop() {
            if !seen.insert(id) {
                continue;
            }
            let t = self.model.type_def(id);
            let fields: Vec<&Field> = match &t.kind {
                TypeKind::Struct(fields) => fields.iter().collect(),
                TypeKind::Enum(vs) | TypeKind::Error(vs) => {
                    vs.iter().flat_map(|v| &v.fields).collect()
                }
            };
            for f in fields {
                if contains_float(&f.ty) {
                    return true;
                }
            }
            stack.extend(self.model.referenced_types(id));
        }
        false
    }

    /// Whether the type is a struct whose every field has a `Default`: scalars, strings,
    /// bytes, lists, maps, optionals, and structs of the same kind (an enum or error has none).
    fn has_default(&self, id: TypeId) -> bool {
        let mut seen = std::collections::BTreeSet::new();
        let mut stack = vec![id];
        while let Some(id) = stack.pop() {
            if !seen.insert(id) {
                continue;
            }
            let TypeKind::Struct(fields) = &self.model.type_def(id).kind else {
                return false;
            };
            for f in fields {
                // A list, map or optional is empty by default whatever it holds.
                if let TypeRef::Named(inner) = &f.ty {
                    stack.push(*inner);
                }
            }
        }
        true
    }

    /// A struct with named fields.
    fn struct_def(&self, t: &TypeDef, fields: &[Field]) -> TokenStream {
        let name = type_ident(&t.name);
        let docs = doc_attrs(&t.docs, &format!("The struct `{}`.", t.qualified_name));
        let deprecated = deprecated_attr(&t.deprecated);
        let derives = self.derives(t);
        let extra = self.type_attrs(&t.qualified_name);
        let fields = fields.iter().map(|f| {
            let field_path = format!("{}.{}", t.qualified_name, f.name);
            let attrs = self.field_attrs(&field_path);
            let field = self.field(f, true, &self.field_fallback_doc(f));
            quote!(#attrs #field)
        });
        quote! {
            #docs
            #deprecated
            #derives
            #extra
            pub struct #name {
                #(#fields,)*
            }
        }
    }

    /// The doc of a field the schema left undocumented: its declaration, and what `None` means.
    fn field_fallback_doc(&self, f: &Field) -> String {
        let decl = format!("`{}: {}` in the schema.", f.name, self.schema_type(&f.ty));
        if f.is_optional() {
            format!("{decl} `None` when absent (it is left out on the wire).")
        } else {
            decl
        }
    }

    /// A type as the schema writes it (`list<shapes.Point>`, `u64?`).
    fn schema_type(&self, ty: &TypeRef) -> String {
        match ty {
            TypeRef::Primitive(p) => p.name().to_owned(),
            TypeRef::List(t) => format!("list<{}>", self.schema_type(t)),
            TypeRef::Map(k, v) => format!("map<{}, {}>", self.schema_type(k), self.schema_type(v)),
            TypeRef::Optional(t) => format!("{}?", self.schema_type(t)),
            TypeRef::Named(id) => {
                let t = self.model.type_def(*id);
                if t.package == self.package {
                    t.name.clone()
                } else {
                    t.qualified_name.clone()
                }
            }
        }
    }

    /// One field of a struct or variant: docs, serde attributes, name and type.
    fn field(&self, f: &Field, public: bool, fallback_doc: &str) -> TokenStream {
        let name = field_ident(&f.name);
        let docs = doc_attrs(&f.docs, fallback_doc);
        let deprecated = deprecated_attr(&f.deprecated);
        let ty = self.field_type(f);
        let mut serde_args: Vec<TokenStream> = Vec::new();
        if snake(&f.name) != f.name || name.to_string().ends_with('_') {
            let wire = &f.name;
            serde_args.push(quote!(rename = #wire));
        }
        if f.is_optional() {
            serde_args.push(quote!(default));
            serde_args.push(quote!(skip_serializing_if = "wsp::Option::is_none"));
        }
        if let Some(shape) = self.shape(&f.ty) {
            let with = format!("wsp::As::<{shape}>");
            serde_args.push(quote!(with = #with));
        }
        let serde = if serde_args.is_empty() {
            TokenStream::new()
        } else {
            quote!(#[serde(#(#serde_args),*)])
        };
        let vis = if public {
            quote!(pub)
        } else {
            TokenStream::new()
        };
        quote! {
            #docs
            #deprecated
            #serde
            #vis #name: #ty
        }
    }

    /// The name of the catch-all variant: `Unknown` unless the schema uses it.
    pub(crate) fn unknown_variant(variants: &[Variant]) -> String {
        let mut name = "Unknown".to_owned();
        while variants
            .iter()
            .any(|v| camel(&v.name) == name || v.name == name)
        {
            name.push('_');
        }
        name
    }

    /// An enum or error: internally tagged with `$type`, with a catch-all variant.
    fn enum_def(&self, t: &TypeDef, variants: &[Variant]) -> TokenStream {
        let name = type_ident(&t.name);
        let kind = if t.is_error() { "error" } else { "enum" };
        let docs = doc_attrs(&t.docs, &format!("The {kind} `{}`.", t.qualified_name));
        let deprecated = deprecated_attr(&t.deprecated);
        let derives = self.derives(t);
        let extra = self.type_attrs(&t.qualified_name);
        let vs = variants.iter().map(|v| self.variant(t, v));
        let unknown = ident(&Self::unknown_variant(variants));
        // The catch-all's decoder refuses the declared names (see `deserialize_except`).
        let except = ident(&format!("__unknown_{}", snake(&t.name)));
        let except_path = except.to_string();
        let known = variants.iter().map(|v| &v.name);
        let unknown_doc = " A variant this version of the schema does not know (sent by a newer \
                           peer): its name and value as received, sent on unchanged.";
        quote! {
            #docs
            #deprecated
            #derives
            #[serde(tag = "$type")]
            #extra
            pub enum #name {
                #(#vs,)*
                #[doc = #unknown_doc]
                #[serde(untagged, deserialize_with = #except_path)]
                #unknown(wsp::UnknownVariant),
            }

            fn #except<'de, D: wsp::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> wsp::Result<wsp::UnknownVariant, D::Error> {
                wsp::UnknownVariant::deserialize_except(deserializer, &[#(#known),*])
            }
        }
    }

    /// One variant.
    fn variant(&self, t: &TypeDef, v: &Variant) -> TokenStream {
        let name = type_ident(&v.name);
        let docs = doc_attrs(
            &v.docs,
            &format!(
                "`{}` in the schema; on the wire `{{\"$type\": \"{}\"{}}}`.",
                v.name,
                v.name,
                if v.is_unit() { "" } else { ", …" }
            ),
        );
        let deprecated = deprecated_attr(&v.deprecated);
        let rename = if name != v.name {
            let wire = &v.name;
            quote!(#[serde(rename = #wire)])
        } else {
            TokenStream::new()
        };
        let variant_path = format!("{}.{}", t.qualified_name, v.name);
        let extra = self.field_attrs(&variant_path);
        if v.is_unit() {
            return quote!(#docs #deprecated #rename #extra #name);
        }
        let fields = v.fields.iter().map(|f| {
            let attrs = self.field_attrs(&format!("{variant_path}.{}", f.name));
            let field = self.field(f, false, &self.field_fallback_doc(f));
            quote!(#attrs #field)
        });
        quote! {
            #docs #deprecated #rename #extra
            #name { #(#fields,)* }
        }
    }

    /// `variant_name`, `Display`, `Error` and `ApplicationError`, through which the runtime turns
    /// it into the ERROR frame (`From<E> for ServiceError`, `RpcError<E>`).
    fn error_impls(&self, t: &TypeDef, variants: &[Variant]) -> TokenStream {
        let name = type_ident(&t.name);
        let unknown = ident(&Self::unknown_variant(variants));
        let arms = variants.iter().map(|v| {
            let vname = type_ident(&v.name);
            let wire = &v.name;
            if v.is_unit() {
                quote!(Self::#vname => #wire)
            } else {
                quote!(Self::#vname { .. } => #wire)
            }
        });
        // Displayed as a sentence: the variant's name in words, then its fields
        // (`overflow (operation: "add")`).
        let sentences = variants.iter().map(|v| {
            let vname = type_ident(&v.name);
            let words = snake(&v.name).replace('_', " ");
            if v.is_unit() {
                return quote!(Self::#vname => f.write_str(#words));
            }
            let fields: Vec<_> = v.fields.iter().map(|f| field_ident(&f.name)).collect();
            let format = format!(
                "{words} ({})",
                v.fields
                    .iter()
                    .map(|f| format!("{}: {{:?}}", f.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            quote!(Self::#vname { #(#fields),* } => ::std::write!(f, #format, #(#fields),*))
        });
        quote! {
            impl #name {
                /// The name of the variant, as sent on the wire (the ERROR frame's message).
                pub fn variant_name(&self) -> &str {
                    match self {
                        #(#arms,)*
                        Self::#unknown(unknown) => unknown.name(),
                    }
                }
            }

            impl wsp::fmt::Display for #name {
                fn fmt(&self, f: &mut wsp::fmt::Formatter<'_>) -> wsp::fmt::Result {
                    match self {
                        #(#sentences,)*
                        Self::#unknown(unknown) => ::std::write!(f, "{} (an error this version of the schema does not know)", unknown.name()),
                    }
                }
            }

            impl ::std::error::Error for #name {}

            impl wsp::ApplicationError for #name {
                fn variant_name(&self) -> &str {
                    #name::variant_name(self)
                }
            }
        }
    }
}

/// Whether a type reference holds a float directly (not through named types).
fn contains_float(ty: &TypeRef) -> bool {
    match ty {
        TypeRef::Primitive(p) => matches!(p, Primitive::F32 | Primitive::F64),
        TypeRef::List(t) | TypeRef::Optional(t) => contains_float(t),
        TypeRef::Map(k, v) => contains_float(k) || contains_float(v),
        TypeRef::Named(_) => false,
    }
}
