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
/// body onto the record, for [`Editable::apply`](crate::crud::Editable::apply).
#[macro_export]
macro_rules! record {
    ($(#[$ra:meta])* pub struct $R:ident, new $N:ident, patch $P:ident
        $(, version $(#[$va:meta])+)? { $($body:tt)* }) => {
        $crate::record!(@field [[$(#[$ra])*] [$($(#[$va])+)?]] $R $N $P [] [] [] $($body)*);
    };

    // All fields read: the three structs.
    (@field [[$($ra:tt)*] [$($va:tt)*]] $R:ident $N:ident $P:ident [$($rf:tt)*] [$($nf:tt)*]
        [$($pf:ident $pk:ident [$($pd:tt)*])*]) => {
        $($ra)*
        pub struct $R { $($rf)* }

        #[derive(::serde::Deserialize, ::utoipa::ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $N { $($nf)* }

        #[derive(::serde::Deserialize, Default, ::utoipa::ToSchema)]
        #[serde(deny_unknown_fields)]
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
    // The server's field: the record's only.
    (@field $ra:tt $R:ident $N:ident $P:ident [$($rf:tt)*] $nf:tt $pf:tt
        $(#[$a:meta])* $f:ident : $t:ty $(, $($rest:tt)*)?) => {
        $crate::record!(@field $ra $R $N $P [$($rf)* $(#[$a])* pub $f: $t,] $nf $pf
            $($($rest)*)?);
    };
    // A client's field: the record's, then the bodies' its modes name.
    (@field $ra:tt $R:ident $N:ident $P:ident [$($rf:tt)*] $nf:tt $pf:tt
        $(#[$a:meta])* $f:ident : $t:ty { $($m:tt)* } $(, $($rest:tt)*)?) => {
        $crate::record!(@new [$ra $R $N $P [$($rf)* $(#[$a])* pub $f: $t,] $nf $pf]
            $f $t [$($m)*] [$($($rest)*)?]);
    };

    // The POST body's part of a field.
    (@new [$ra:tt $R:ident $N:ident $P:ident $rf:tt [$($nf:tt)*] $pf:tt] $f:ident $t:ty
        [$(#[$na:meta])* new opt $(, $($m:tt)*)?] $rest:tt) => {
        $crate::record!(@patch [$ra $R $N $P $rf [$($nf)* $(#[$na])* pub $f: Option<$t>,] $pf]
            $f $t [$($($m)*)?] $rest);
    };
    (@new [$ra:tt $R:ident $N:ident $P:ident $rf:tt [$($nf:tt)*] $pf:tt] $f:ident $t:ty
        [$(#[$na:meta])* new default $(, $($m:tt)*)?] $rest:tt) => {
        $crate::record!(@patch
            [$ra $R $N $P $rf [$($nf)* $(#[$na])* #[serde(default)] pub $f: $t,] $pf]
            $f $t [$($($m)*)?] $rest);
    };
    (@new [$ra:tt $R:ident $N:ident $P:ident $rf:tt [$($nf:tt)*] $pf:tt] $f:ident $t:ty
        [$(#[$na:meta])* new $(, $($m:tt)*)?] $rest:tt) => {
        $crate::record!(@patch [$ra $R $N $P $rf [$($nf)* $(#[$na])* pub $f: $t,] $pf]
            $f $t [$($($m)*)?] $rest);
    };
    (@new $acc:tt $f:ident $t:ty [$($m:tt)*] $rest:tt) => {
        $crate::record!(@patch $acc $f $t [$($m)*] $rest);
    };

    // The PATCH body's part of a field, then the next field.
    (@patch [$ra:tt $R:ident $N:ident $P:ident $rf:tt $nf:tt [$($pf:tt)*]] $f:ident $t:ty
        [$(#[$pa:meta])* patch null] [$($rest:tt)*]) => {
        $crate::record!(@field $ra $R $N $P $rf $nf [$($pf)* $f opt [
            $(#[$pa])*
            #[serde(default, deserialize_with = "crate::http::nullable")]
            #[schema(value_type = $t)]
            pub $f: Option<$t>,
        ]] $($rest)*);
    };
    (@patch [$ra:tt $R:ident $N:ident $P:ident $rf:tt $nf:tt [$($pf:tt)*]] $f:ident $t:ty
        [$(#[$pa:meta])* patch some] [$($rest:tt)*]) => {
        $crate::record!(@field $ra $R $N $P $rf $nf
            [$($pf)* $f some [$(#[$pa])* pub $f: $t,]] $($rest)*);
    };
    (@patch [$ra:tt $R:ident $N:ident $P:ident $rf:tt $nf:tt [$($pf:tt)*]] $f:ident $t:ty
        [$(#[$pa:meta])* patch required] [$($rest:tt)*]) => {
        $crate::record!(@field $ra $R $N $P $rf $nf
            [$($pf)* $f required [$(#[$pa])* pub $f: $t,]] $($rest)*);
    };
    (@patch [$ra:tt $R:ident $N:ident $P:ident $rf:tt $nf:tt [$($pf:tt)*]] $f:ident $t:ty
        [$(#[$pa:meta])* patch] [$($rest:tt)*]) => {
        $crate::record!(@field $ra $R $N $P $rf $nf
            [$($pf)* $f opt [$(#[$pa])* pub $f: Option<$t>,]] $($rest)*);
    };
    (@patch [$ra:tt $R:ident $N:ident $P:ident $rf:tt $nf:tt $pf:tt] $f:ident $t:ty
        [] [$($rest:tt)*]) => {
        $crate::record!(@field $ra $R $N $P $rf $nf $pf $($rest)*);
    };
}
