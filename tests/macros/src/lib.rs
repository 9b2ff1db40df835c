//! `#[backend_test]` turns one `async fn` into a test per database engine, so the whole
//! black-box suite runs on SQLite, PostgreSQL and MySQL/MariaDB without being written three times.

use proc_macro::TokenStream;
use quote::quote;
use syn::{ItemFn, parse_macro_input};

/// Marks an `async fn` with no arguments as a black-box test for every engine.
///
/// `async fn lists_stations() { … }` stays as written and gains a module of the same name with
/// one test per engine: `lists_stations::sqlite`, `lists_stations::postgres` and
/// `lists_stations::mysql`. Each runs the body with `crate::helpers::on_backend`, which makes
/// `spawn_app` use that engine. The server engines' tests are ignored, with the reason, unless the
/// suite was built with their server's URL set (the package's build script tells).
#[proc_macro_attribute]
pub fn backend_test(attribute: TokenStream, item: TokenStream) -> TokenStream {
    if !attribute.is_empty() {
        return syn::Error::new(
            proc_macro2::Span::call_site(),
            "#[backend_test] takes no arguments",
        )
        .to_compile_error()
        .into();
    }
    let test = parse_macro_input!(item as ItemFn);
    if test.sig.asyncness.is_none() || !test.sig.inputs.is_empty() {
        return syn::Error::new_spanned(
            &test.sig,
            "#[backend_test] needs an `async fn` with no arguments",
        )
        .to_compile_error()
        .into();
    }
    let name = &test.sig.ident;
    let engines = [
        (quote!(sqlite), quote!(Sqlite), quote!()),
        (
            quote!(postgres),
            quote!(Postgres),
            quote!(#[cfg_attr(
                not(station_test_postgres),
                ignore = "needs a PostgreSQL server: set TEST_POSTGRES_URL (see README, Development)"
            )]),
        ),
        (
            quote!(mysql),
            quote!(Mysql),
            quote!(#[cfg_attr(
                not(station_test_mysql),
                ignore = "needs a MariaDB server: set TEST_MYSQL_URL (see README, Development)"
            )]),
        ),
    ];
    let per_engine = engines.iter().map(|(test_name, backend, unless_configured)| {
        quote! {
            #[actix_web::test]
            #unless_configured
            async fn #test_name() {
                crate::helpers::on_backend(crate::helpers::Backend::#backend, super::#name()).await;
            }
        }
    });
    quote! {
        #test

        mod #name {
            #(#per_engine)*
        }
    }
    .into()
}
