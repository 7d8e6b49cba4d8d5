//! A record and its request bodies from one field list: [`record!`](crate::record).

/// Declares an entity's record, its POST body and its PATCH body from the record's one field
/// list, so a field is named and typed once:
///
/// ```text
/// crate::record! {
///     /// A billing account.
///     #[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
///     pub struct Account, new NewAccount, patch AccountPatch {
///         id: String,
///         customer_id: String { new },
///         /// billing | settlement
///         account_type: String { new opt, patch },
///         payment_method: Option<String> { new, patch null },
///         version: i64,
///     }
/// }
/// ```
///
/// A field with no braces is the server's (id, version, timestamps, what a transition sets):
/// it is in the record only. In braces, `new` puts it in the POST body as it is in the record
/// (required unless it is an `Option`), `new opt` as an `Option` the build defaults, `new
/// default` as the type's default when absent; `patch` puts it in the PATCH body as an
/// `Option` (absent: unchanged), `patch null` (for an `Option` field) as one that `null`
/// clears, `patch some` (for an `Option` field) as one that `null` leaves unchanged, `patch
/// required` as it is in the record, required. A field with `new` and no `patch` cannot
/// change once created. Doc comments before a field describe it in the record; those inside
/// the braces, before `new` or `patch`, describe it in that body. Both bodies refuse unknown
/// fields; the PATCH body also takes the `version` the client read (described by the
/// attributes after `version` in the header, if any). `apply_to` copies a PATCH
/// body onto the record ([`crud::Patch`](crate::crud::Patch), which
/// [`Editable::apply`](crate::crud::Editable::apply) calls).
///
/// `into_record` turns a POST body into a new record, for
/// [`Creatable::build`](crate::crud::Creatable::build), before its checks: the body's fields
/// as they are, `new opt = value` fields defaulted to `value` when absent (plain `new opt`
/// ones to their type's default: a build whose default is not a constant takes the body's
/// value first), `id` a fresh id, `version` 1, `created_at` and `updated_at` the time now,
/// and the server's other fields their type's default, which the build sets if it must.
#[macro_export]
macro_rules! record {
    ($(#[$ra:meta])* pub struct $R:ident, new $N:ident, patch $P:ident
        $(, version $(#[$va:meta])+)? { $($body:tt)* }) => {
        $crate::record!(@field [[$(#[$ra])*] [$($(#[$va])+)?]] $R $N $P [] [] [] [] $($body)*);
    };

    // All fields read: the three structs.
    (@field [[$($ra:tt)*] [$($va:tt)*]] $R:ident $N:ident $P:ident [$($rf:tt)*] [$($nf:tt)*]
        [$($pf:ident $pk:ident [$($pd:tt)*])*] [$($if:ident $ik:ident [$($id:tt)*])*]) => {
        $($ra)*
        pub struct $R { $($rf)* }

        #[derive(::serde::Deserialize, Default, ::utoipa::ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $N { $($nf)* }

        impl $N {
            /// The new record this body describes, before its checks. (A record without
            /// timestamps leaves `now` unused.)
            #[allow(dead_code, unused_variables)]
            pub fn into_record(self) -> $R {
                let now = $crate::store::now_text();
                $R { $($if: $crate::record!(@init self now $if $ik [$($id)*]),)* }
            }
        }

        // A record no PATCH changes (teams, regions) leaves its body unused.
        #[derive(::serde::Deserialize, Default, ::utoipa::ToSchema)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        pub struct $P {
            $($($pd)*)*
            $($va)*
            pub version: Option<i64>,
        }

        impl $P {
            /// Copies onto `record` each field the body sets; absent fields stay as they were.
            /// (A record no PATCH changes has no such field, and `record` goes unused.)
            #[allow(dead_code, unused_variables)]
            pub fn apply_to(self, record: &mut $R) {
                $($crate::record!(@apply self record $pf $pk);)*
            }
        }

        impl $crate::crud::Patch<$R> for $P {
            fn apply_to(self, record: &mut $R) {
                $P::apply_to(self, record)
            }
        }
    };
    (@apply $s:tt $r:ident $f:ident opt) => {
        if let Some(v) = $s.$f {
            $r.$f = v;
        }
    };
    (@apply $s:tt $r:ident $f:ident some) => {
        if let Some(v) = $s.$f {
            $r.$f = Some(v);
        }
    };
    (@apply $s:tt $r:ident $f:ident required) => {
        $r.$f = $s.$f
    };
    // A field of a new record: the server's by its name, or the body's.
    (@init $s:tt $now:ident id server []) => {
        $crate::store::new_id()
    };
    (@init $s:tt $now:ident version server []) => {
        1
    };
    (@init $s:tt $now:ident created_at server []) => {
        $now.clone()
    };
    (@init $s:tt $now:ident updated_at server []) => {
        $now.clone()
    };
    (@init $s:tt $now:ident $f:ident server []) => {
        ::std::default::Default::default()
    };
    (@init $s:tt $now:ident $f:ident given []) => {
        $s.$f
    };
    (@init $s:tt $now:ident $f:ident opt []) => {
        $s.$f.unwrap_or_default()
    };
    (@init $s:tt $now:ident $f:ident opt [$d:expr]) => {
        $s.$f.unwrap_or_else(|| $d)
    };
    // The server's field: the record's only.
    (@field $ra:tt $R:ident $N:ident $P:ident [$($rf:tt)*] $nf:tt $pf:tt [$($if:tt)*]
        $(#[$a:meta])* $f:ident : $t:ty $(, $($rest:tt)*)?) => {
        $crate::record!(@field $ra $R $N $P [$($rf)* $(#[$a])* pub $f: $t,] $nf $pf
            [$($if)* $f server []] $($($rest)*)?);
    };
    // A client's field: the record's, then the bodies' its modes name.
    (@field $ra:tt $R:ident $N:ident $P:ident [$($rf:tt)*] $nf:tt $pf:tt $if:tt
        $(#[$a:meta])* $f:ident : $t:ty { $($m:tt)* } $(, $($rest:tt)*)?) => {
        $crate::record!(@new [$ra $R $N $P [$($rf)* $(#[$a])* pub $f: $t,] $nf $pf $if]
            $f $t [$($m)*] [$($($rest)*)?]);
    };

    // The POST body's part of a field.
    (@new [$ra:tt $R:ident $N:ident $P:ident $rf:tt [$($nf:tt)*] $pf:tt [$($if:tt)*]]
        $f:ident $t:ty [$(#[$na:meta])* new opt = $d:expr $(, $($m:tt)*)?] $rest:tt) => {
        $crate::record!(@patch [$ra $R $N $P $rf [$($nf)* $(#[$na])* pub $f: Option<$t>,] $pf
            [$($if)* $f opt [$d]]] $f $t [$($($m)*)?] $rest);
    };
    (@new [$ra:tt $R:ident $N:ident $P:ident $rf:tt [$($nf:tt)*] $pf:tt [$($if:tt)*]]
        $f:ident $t:ty [$(#[$na:meta])* new opt $(, $($m:tt)*)?] $rest:tt) => {
        $crate::record!(@patch [$ra $R $N $P $rf [$($nf)* $(#[$na])* pub $f: Option<$t>,] $pf
            [$($if)* $f opt []]] $f $t [$($($m)*)?] $rest);
    };
    (@new [$ra:tt $R:ident $N:ident $P:ident $rf:tt [$($nf:tt)*] $pf:tt [$($if:tt)*]]
        $f:ident $t:ty [$(#[$na:meta])* new default $(, $($m:tt)*)?] $rest:tt) => {
        $crate::record!(@patch
            [$ra $R $N $P $rf [$($nf)* $(#[$na])* #[serde(default)] pub $f: $t,] $pf
            [$($if)* $f given []]] $f $t [$($($m)*)?] $rest);
    };
    (@new [$ra:tt $R:ident $N:ident $P:ident $rf:tt [$($nf:tt)*] $pf:tt [$($if:tt)*]]
        $f:ident $t:ty [$(#[$na:meta])* new $(, $($m:tt)*)?] $rest:tt) => {
        $crate::record!(@patch [$ra $R $N $P $rf [$($nf)* $(#[$na])* pub $f: $t,] $pf
            [$($if)* $f given []]] $f $t [$($($m)*)?] $rest);
    };
    // Not in the POST body: the server's when a record is new.
    (@new [$ra:tt $R:ident $N:ident $P:ident $rf:tt $nf:tt $pf:tt [$($if:tt)*]]
        $f:ident $t:ty [$($m:tt)*] $rest:tt) => {
        $crate::record!(@patch [$ra $R $N $P $rf $nf $pf [$($if)* $f server []]]
            $f $t [$($m)*] $rest);
    };

    // The PATCH body's part of a field, then the next field.
    (@patch [$ra:tt $R:ident $N:ident $P:ident $rf:tt $nf:tt [$($pf:tt)*] $if:tt] $f:ident $t:ty
        [$(#[$pa:meta])* patch null] [$($rest:tt)*]) => {
        $crate::record!(@field $ra $R $N $P $rf $nf [$($pf)* $f opt [
            $(#[$pa])*
            #[serde(default, deserialize_with = "crate::http::nullable")]
            #[schema(value_type = $t)]
            pub $f: Option<$t>,
        ]] $if $($rest)*);
    };
    (@patch [$ra:tt $R:ident $N:ident $P:ident $rf:tt $nf:tt [$($pf:tt)*] $if:tt] $f:ident $t:ty
        [$(#[$pa:meta])* patch some] [$($rest:tt)*]) => {
        $crate::record!(@field $ra $R $N $P $rf $nf
            [$($pf)* $f some [$(#[$pa])* pub $f: $t,]] $if $($rest)*);
    };
    (@patch [$ra:tt $R:ident $N:ident $P:ident $rf:tt $nf:tt [$($pf:tt)*] $if:tt] $f:ident $t:ty
        [$(#[$pa:meta])* patch required] [$($rest:tt)*]) => {
        $crate::record!(@field $ra $R $N $P $rf $nf
            [$($pf)* $f required [$(#[$pa])* pub $f: $t,]] $if $($rest)*);
    };
    (@patch [$ra:tt $R:ident $N:ident $P:ident $rf:tt $nf:tt [$($pf:tt)*] $if:tt] $f:ident $t:ty
        [$(#[$pa:meta])* patch] [$($rest:tt)*]) => {
        $crate::record!(@field $ra $R $N $P $rf $nf
            [$($pf)* $f opt [$(#[$pa])* pub $f: Option<$t>,]] $if $($rest)*);
    };
    (@patch [$ra:tt $R:ident $N:ident $P:ident $rf:tt $nf:tt $pf:tt $if:tt] $f:ident $t:ty
        [] [$($rest:tt)*]) => {
        $crate::record!(@field $ra $R $N $P $rf $nf $pf $if $($rest)*);
    };
}
