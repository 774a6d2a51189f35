//! Type declarations and their per-type converters.

use wsp_idl::{Deprecated, Field, Model, Primitive, TypeDef, TypeId, TypeKind, TypeRef, Variant};

use super::names::{helper, ident, key, lit};
use super::source::Source;
use super::{Gen, Int64};

/// Which declared types need a decoder and which an encoder (computed once for the model,
/// to a fixed point so that recursive types are handled).
pub(super) struct Needs {
    decode: Vec<bool>,
    encode: Vec<bool>,
    /// 64-bit integers are `number`s, checked on the way out.
    int64_number: bool,
}

impl Needs {
    pub(super) fn analyse(model: &Model, int64: Int64) -> Needs {
        // Enums and errors always convert: unknown variants in, `$unknown` back to the wire out.
        let is_enum: Vec<bool> = model.types.iter().map(|t| t.variants().is_some()).collect();
        let mut needs = Needs {
            decode: is_enum.clone(),
            encode: is_enum,
            int64_number: int64 == Int64::Number,
        };
        loop {
            let mut changed = false;
            for t in &model.types {
                let fields = all_fields(t);
                let i = t.id.0;
                if !needs.decode[i] && fields.iter().any(|f| needs.decodes(&f.ty)) {
                    needs.decode[i] = true;
                    changed = true;
                }
                if !needs.encode[i] && fields.iter().any(|f| needs.encodes(&f.ty)) {
                    needs.encode[i] = true;
                    changed = true;
                }
            }
            if !changed {
                return needs;
            }
        }
    }

    /// Whether a value of this type differs between its decoded wire form and TypeScript: 64-bit
    /// integers (`bigint`), bytes (base64 in JSON), floats (non-finite ones are strings in JSON),
    /// maps (`Map`), optionals (nil → absent), enums (unknown variants).
    pub(super) fn decodes(&self, ty: &TypeRef) -> bool {
        match ty {
            TypeRef::Primitive(p) => {
                p.is_64_bit_integer()
                    || matches!(p, Primitive::Bytes | Primitive::F32 | Primitive::F64)
            }
            TypeRef::List(t) => self.decodes(t),
            TypeRef::Map(..) | TypeRef::Optional(_) => true,
            TypeRef::Named(id) => self.decode[id.0],
        }
    }

    /// Whether a value of this type needs converting before it is encoded: floats (marked with
    /// their width), enums (the unknown variant), 64-bit `number`s (checked), and what contains
    /// them.
    pub(super) fn encodes(&self, ty: &TypeRef) -> bool {
        match ty {
            TypeRef::Primitive(p) => {
                matches!(p, Primitive::F32 | Primitive::F64)
                    || (self.int64_number && p.is_64_bit_integer())
            }
            TypeRef::List(t) | TypeRef::Optional(t) | TypeRef::Map(_, t) => self.encodes(t),
            TypeRef::Named(id) => self.encode[id.0],
        }
    }
}

/// The fields of a struct, or of all variants of an enum.
fn all_fields(t: &TypeDef) -> Vec<&Field> {
    match &t.kind {
        TypeKind::Struct(fields) => fields.iter().collect(),
        TypeKind::Enum(vs) | TypeKind::Error(vs) => vs.iter().flat_map(|v| &v.fields).collect(),
    }
}

/// JSDoc tags for `@deprecated`.
pub(super) fn deprecated_tags(d: &Option<Deprecated>) -> Vec<String> {
    match d {
        None => Vec::new(),
        Some(Deprecated { reason: None }) => vec!["@deprecated".to_owned()],
        Some(Deprecated { reason: Some(r) }) => vec![format!("@deprecated {r}")],
    }
}

impl Gen<'_> {
    /// The top-level names a type generates (for collision checks).
    pub(super) fn type_names(&self, id: TypeId) -> Vec<String> {
        let t = self.model.type_def(id);
        let mut out = vec![ident(&t.name)];
        if self.needs.decode[id.0] {
            out.push(helper("decode", &t.name));
        }
        if self.needs.encode[id.0] {
            out.push(helper("encode", &t.name));
        }
        if t.is_error() {
            out.push(helper("is", &t.name));
        }
        out
    }

    /// The TypeScript type of a type reference (`T?` as `T | undefined`).
    pub(super) fn ts_type(&self, ty: &TypeRef) -> String {
        match ty {
            TypeRef::Primitive(p) => self.primitive(*p).to_owned(),
            TypeRef::List(t) => {
                let inner = self.ts_type(t);
                if t.is_optional() {
                    format!("({inner})[]")
                } else {
                    format!("{inner}[]")
                }
            }
            TypeRef::Map(k, v) => format!("Map<{}, {}>", self.ts_type(k), self.ts_type(v)),
            TypeRef::Optional(t) => format!("{} | undefined", self.ts_type(t)),
            TypeRef::Named(id) => self.type_ref(*id),
        }
    }

    /// The TypeScript type of a primitive.
    fn primitive(&self, p: Primitive) -> &'static str {
        match p {
            Primitive::Bool => "boolean",
            Primitive::I64 | Primitive::U64 if self.int64 == Int64::BigInt => "bigint",
            Primitive::String => "string",
            Primitive::Bytes => "Uint8Array",
            _ => "number",
        }
    }

    /// A declared type's name as this module refers to it.
    pub(super) fn type_ref(&self, id: TypeId) -> String {
        self.qualify(id, ident(&self.model.type_def(id).name))
    }

    /// A declared type's helper (`decodePoint`) as this module refers to it.
    pub(super) fn helper_ref(&self, prefix: &str, id: TypeId) -> String {
        self.qualify(id, helper(prefix, &self.model.type_def(id).name))
    }

    /// An expression converting `expr` (a decoded wire value, `unknown`) to the type. `codec` is
    /// the expression naming the codec; `depth` numbers lambda parameters.
    pub(super) fn decode_expr(
        &self,
        ty: &TypeRef,
        expr: &str,
        codec: &str,
        depth: usize,
    ) -> String {
        let e = format!("e{depth}");
        let next = depth + 1;
        match ty {
            TypeRef::Primitive(p) if p.is_64_bit_integer() => match self.int64 {
                Int64::BigInt => format!("$wsp.convert.toBigInt({expr})"),
                Int64::Number => format!("$wsp.convert.toSafeInteger({expr})"),
            },
            TypeRef::Primitive(Primitive::Bytes) => {
                format!("$wsp.convert.toBytes({expr}, {codec})")
            }
            TypeRef::Primitive(Primitive::Bool) => format!("$wsp.convert.toBoolean({expr})"),
            TypeRef::Primitive(Primitive::F32 | Primitive::F64) => {
                format!("$wsp.convert.toFloat({expr})")
            }
            TypeRef::Primitive(Primitive::String) => format!("$wsp.convert.toText({expr})"),
            TypeRef::Primitive(_) => format!("$wsp.convert.toNumber({expr})"),
            TypeRef::List(t) if !self.needs.decodes(t) => {
                format!("$wsp.convert.list({expr}) as {}", self.ts_type(ty))
            }
            TypeRef::List(t) => format!(
                "$wsp.convert.list({expr}).map(({e}) => {})",
                self.decode_expr(t, &e, codec, next)
            ),
            TypeRef::Map(k, v) => format!(
                "$wsp.convert.toMap({expr}, $wsp.convert.{}, ({e}) => {})",
                match k.as_ref() {
                    TypeRef::Primitive(p)
                        if p.is_64_bit_integer() && self.int64 == Int64::BigInt =>
                    {
                        "bigintKey"
                    }
                    TypeRef::Primitive(p) if p.is_integer() => "intKey",
                    _ => "stringKey",
                },
                self.decode_expr(v, &e, codec, next)
            ),
            TypeRef::Optional(t) => format!(
                "$wsp.convert.optional({expr}, ({e}) => {})",
                self.decode_expr(t, &e, codec, next)
            ),
            TypeRef::Named(id) if self.needs.decode[id.0] => {
                format!("{}({expr}, {codec})", self.helper_ref("decode", *id))
            }
            TypeRef::Named(id) => format!("{expr} as {}", self.type_ref(*id)),
        }
    }

    /// Like [`Gen::decode_expr`] for a required value: absent or nil fails (the converters
    /// already reject it; the cast of a type without a decoder is checked).
    pub(super) fn decode_required(
        &self,
        ty: &TypeRef,
        expr: &str,
        codec: &str,
        what: &str,
    ) -> String {
        // Every converter rejects absent values except the cast of a type without a decoder.
        let plain = matches!(ty, TypeRef::Named(id) if !self.needs.decode[id.0]);
        if plain {
            let checked = format!("$wsp.convert.required({expr}, {})", lit(what));
            self.decode_expr(ty, &checked, codec, 0)
        } else {
            self.decode_expr(ty, expr, codec, 0)
        }
    }

    /// An expression converting the TypeScript value `expr` to its wire form, or `expr` itself
    /// when nothing needs converting.
    pub(super) fn encode_expr(&self, ty: &TypeRef, expr: &str, depth: usize) -> String {
        if !self.needs.encodes(ty) {
            return expr.to_owned();
        }
        let e = format!("e{depth}");
        let next = depth + 1;
        match ty {
            TypeRef::Primitive(Primitive::F32) => format!("$wsp.convert.f32({expr})"),
            TypeRef::Primitive(p) if p.is_64_bit_integer() => format!("$wsp.convert.int64({expr})"),
            TypeRef::Primitive(_) => format!("$wsp.convert.f64({expr})"),
            TypeRef::List(t) => format!("{expr}.map(({e}) => {})", self.encode_expr(t, &e, next)),
            TypeRef::Map(_, v) => format!(
                "$wsp.convert.mapValues({expr}, ({e}) => {})",
                self.encode_expr(v, &e, next)
            ),
            TypeRef::Optional(t) => format!(
                "{expr} === undefined ? undefined : {}",
                self.encode_expr(t, expr, depth)
            ),
            TypeRef::Named(id) => format!("{}({expr})", self.helper_ref("encode", *id)),
        }
    }

    /// A type's declaration and its helpers.
    pub(super) fn type_decl(&self, src: &mut Source, id: TypeId) {
        let t = self.model.type_def(id);
        let name = ident(&t.name);
        src.jsdoc(&t.docs, &deprecated_tags(&t.deprecated));
        match &t.kind {
            TypeKind::Struct(fields) => {
                src.line(&format!("export interface {name} {{"));
                self.fields_decl(src, fields);
                src.line("}");
            }
            TypeKind::Enum(variants) | TypeKind::Error(variants) => {
                src.line(&format!("export type {name} ="));
                src.indent();
                for v in variants {
                    self.variant_decl(src, v);
                }
                src.line("| $wsp.UnknownVariant;");
                src.dedent();
            }
        }
        if self.needs.decode[id.0] {
            src.blank();
            self.decoder(src, t);
        }
        if self.needs.encode[id.0] {
            src.blank();
            self.encoder(src, t);
        }
        if t.is_error() {
            src.blank();
            src.doc(&format!(
                "Whether `e` is a `{}` thrown by a method that declares it (`throws {}`).",
                t.qualified_name, t.name
            ));
            src.line(&format!(
                "export function {}(e: unknown): e is $wsp.ApplicationError<{name}> {{",
                helper("is", &t.name)
            ));
            src.line(&format!(
                "return $wsp.codegen.isApplicationErrorOf(e, {});",
                lit(&t.qualified_name)
            ));
            src.line("}");
        }
    }

    /// Property declarations: `name: T;` or `name?: T;` for optional fields.
    fn fields_decl(&self, src: &mut Source, fields: &[Field]) {
        for f in fields {
            src.jsdoc(&f.docs, &deprecated_tags(&f.deprecated));
            match &f.ty {
                TypeRef::Optional(inner) => {
                    src.line(&format!("{}?: {};", key(&f.name), self.ts_type(inner)))
                }
                ty => src.line(&format!("{}: {};", key(&f.name), self.ts_type(ty))),
            }
        }
    }

    /// One member of an enum's union.
    fn variant_decl(&self, src: &mut Source, v: &Variant) {
        src.jsdoc(&v.docs, &deprecated_tags(&v.deprecated));
        if v.is_unit() {
            src.line(&format!("| {{ $type: {} }}", lit(&v.name)));
        } else {
            src.line("| {");
            src.line(&format!("$type: {};", lit(&v.name)));
            self.fields_decl(src, &v.fields);
            src.line("}");
        }
    }

    /// `decodeX(value, codec)`.
    fn decoder(&self, src: &mut Source, t: &TypeDef) {
        let name = ident(&t.name);
        // Written first to learn whether it uses the codec; one level in, like a function body.
        let mut body = Source::default();
        body.indent();
        match &t.kind {
            TypeKind::Struct(fields) => {
                body.line("const o = $wsp.convert.object(value);");
                self.build_object(&mut body, &name, None, fields);
            }
            TypeKind::Enum(variants) | TypeKind::Error(variants) => {
                body.line("const o = $wsp.convert.object(value);");
                body.line("switch (o['$type']) {");
                for v in variants {
                    if v.is_unit() {
                        body.line(&format!("case {}:", lit(&v.name)));
                        body.indent();
                        body.line(&format!("return {{ $type: {} }};", lit(&v.name)));
                        body.dedent();
                    } else {
                        body.line(&format!("case {}: {{", lit(&v.name)));
                        let ty = format!("Extract<{name}, {{ $type: {} }}>", lit(&v.name));
                        self.build_object(&mut body, &ty, Some(&v.name), &v.fields);
                        body.line("}");
                    }
                }
                body.line("default:");
                body.indent();
                body.line("return { $type: '$unknown', variant: String(o['$type']), value: o };");
                body.dedent();
                body.line("}");
            }
        }
        let body = body.finish();
        let codec = if body.contains(", codec)") {
            "codec"
        } else {
            "_codec"
        };
        src.doc(&format!(
            "Converts a decoded `{}` (MessagePack or JSON) to its TypeScript form.",
            t.qualified_name
        ));
        src.line(&format!(
            "export function {}(value: unknown, {codec}: $wsp.CodecKind): {name} {{",
            helper("decode", &t.name)
        ));
        src.append(&body);
        src.line("}");
    }

    /// `const out: T = { required fields }; if (...) out.optional = ...; return out;` reading
    /// from `o`.
    fn build_object(&self, src: &mut Source, ty: &str, variant: Option<&str>, fields: &[Field]) {
        let required: Vec<&Field> = fields.iter().filter(|f| !f.is_optional()).collect();
        let optional: Vec<&Field> = fields.iter().filter(|f| f.is_optional()).collect();
        let open = if optional.is_empty() {
            "return".to_owned()
        } else {
            format!("const out: {ty} =")
        };
        if required.is_empty() && variant.is_none() {
            src.line(&format!("{open} {{}};"));
        } else {
            self.object_literal(src, &open, variant, &required);
        }
        if !optional.is_empty() {
            for f in &optional {
                let access = format!("o[{}]", lit(&f.name));
                let value = self.decode_expr(f.ty.strip_optional(), &access, "codec", 0);
                let test = format!("if ({access} !== undefined && {access} !== null)");
                let assign = format!("out[{}] = {value};", lit(&f.name));
                if test.len() + assign.len() < src.width_left() {
                    src.line(&format!("{test} {assign}"));
                } else {
                    src.line(&format!("{test} {{"));
                    src.line(&assign);
                    src.line("}");
                }
            }
            src.line("return out;");
        }
    }

    /// `{open} { $type, required fields };` reading from `o`.
    fn object_literal(
        &self,
        src: &mut Source,
        open: &str,
        variant: Option<&str>,
        required: &[&Field],
    ) {
        src.line(&format!("{open} {{"));
        if let Some(v) = variant {
            src.line(&format!("$type: {},", lit(v)));
        }
        for f in required {
            let access = format!("o[{}]", lit(&f.name));
            let value = self.decode_required(&f.ty, &access, "codec", &f.name);
            src.line(&format!("{}: {value},", key(&f.name)));
        }
        src.line("};");
    }

    /// `encodeX(value)`.
    fn encoder(&self, src: &mut Source, t: &TypeDef) {
        let name = ident(&t.name);
        src.doc(&format!(
            "Converts a `{}` to its wire form (fields in declaration order, floats marked).",
            t.qualified_name
        ));
        src.line(&format!(
            "export function {}(value: {name}): unknown {{",
            helper("encode", &t.name)
        ));
        match &t.kind {
            TypeKind::Struct(fields) => {
                src.line("return {");
                self.encode_fields(src, "value", fields);
                src.line("};");
            }
            TypeKind::Enum(variants) | TypeKind::Error(variants) => {
                src.line("switch (value.$type) {");
                for v in variants {
                    src.line(&format!("case {}:", lit(&v.name)));
                    src.indent();
                    if v.is_unit() {
                        src.line(&format!("return {{ $type: {} }};", lit(&v.name)));
                    } else {
                        src.line("return {");
                        src.line(&format!("$type: {},", lit(&v.name)));
                        self.encode_fields(src, "value", &v.fields);
                        src.line("};");
                    }
                    src.dedent();
                }
                src.line("case '$unknown':");
                src.indent();
                src.line("return value.value;");
                src.dedent();
                src.line("}");
            }
        }
        src.line("}");
    }

    fn encode_fields(&self, src: &mut Source, value: &str, fields: &[Field]) {
        for f in fields {
            let access = format!("{value}[{}]", lit(&f.name));
            src.line(&format!(
                "{}: {},",
                key(&f.name),
                self.encode_expr(&f.ty, &access, 0)
            ));
        }
    }
}
