//! `GET /api/records`: validate the query, hand it to this worker's resolver, shape the answer.

use actix::Addr;
use actix_web::{http::header, web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::{
    actor::{Resolve, ResolveListing, Resolver},
    config::ResolverConfig,
    error::ResolveError,
    filters::{self, AfterResolution},
    in_flight::Reservation,
    options::{FieldFilter, Options, RootFilter},
    resolution::Page,
};
use crate::{
    access::{Caller, Callers},
    config::Config,
    did::Did,
    error::ApiError,
    gun,
    http::{
        error::RequestError,
        query::{self, StrictQuery},
        request::{bearer, compressed},
    },
};

/// More DIDs than this in one request is a client bug or abuse, not a use case.
const MAX_DIDS: usize = 50;
const MAX_FIELD_NAMES: usize = 50;
const MAX_FIELD_NAME_LEN: usize = 128;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(compressed("/api/records").route(web::get().to(get_records)))
        .service(compressed("/api/records/recordTypes").route(web::get().to(record_types)));
}

/// The old API's count of records by type: the indexer holds every record, so it answers.
async fn record_types(
    req: HttpRequest,
    config: web::Data<Config>,
    gun: web::Data<gun::Client>,
) -> Result<HttpResponse, ApiError> {
    if config.resolver.oip_api.is_none() {
        return Err(RequestError::NotConfigured(
            "resolver.oip_api (record types come from the indexer)",
        )
        .into());
    }
    let answer = gun
        .list("/api/records/recordTypes".into(), authorization(&req))
        .await
        .map_err(|e| ResolveError::Upstream("the indexer's record types".into(), e))?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::VARY, "Authorization"))
        .body(answer))
}

/// The caller's `Authorization`, passed on so that the indexer's own access rules apply.
fn authorization(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}

/// The old API's names are accepted (`didTx`, `resolveFieldName`); parameters of its listings
/// that did nothing to a query by DID (`sortBy`, ...) are ignored then, as they were.
#[derive(Deserialize, Default)]
struct RecordsQuery {
    did: Option<String>,
    /// The old name of `did`: `did` wins when both come.
    #[serde(rename = "didTx")]
    did_tx: Option<String>,
    #[serde(rename = "resolveDepth")]
    depth: Option<String>,
    #[serde(rename = "resolveNamesOnly")]
    names_only: Option<String>,
    #[serde(rename = "resolveFieldNames", alias = "resolveFieldName")]
    fields: Option<String>,
    #[serde(rename = "forceRefresh")]
    force_refresh: Option<String>,
    #[serde(rename = "includeSigs")]
    include_sigs: Option<String>,
    #[serde(rename = "includePubKeys")]
    include_pub_keys: Option<String>,
    #[serde(rename = "hideNullValues")]
    hide_null_values: Option<String>,
    #[serde(rename = "hideDateReadable")]
    hide_date_readable: Option<String>,
    #[serde(rename = "recordType")]
    record_type: Option<String>,
    source: Option<String>,
    limit: Option<String>,
    page: Option<String>,
    #[serde(rename = "exerciseNames")]
    exercise_names: Option<String>,
    #[serde(rename = "exerciseDIDs")]
    exercise_dids: Option<String>,
    #[serde(rename = "ingredientNames")]
    ingredient_names: Option<String>,
    #[serde(rename = "hasAudio")]
    has_audio: Option<String>,
    #[serde(rename = "summarizeRecipe")]
    summarize_recipe: Option<String>,
}

async fn get_records(
    req: HttpRequest,
    config: web::Data<Config>,
    callers: web::Data<Callers>,
    resolver: web::Data<Addr<Resolver>>,
    query: StrictQuery<RecordsQuery>,
) -> Result<HttpResponse, ApiError> {
    let config = &config.resolver;
    let caller = callers.of(bearer(&req));
    let auth = caller.envelope();
    let query = query.into_inner();
    let page = Page::from_query(query.limit.as_deref(), query.page.as_deref());
    let resolution = match parse(query, config)? {
        Asked::Dids {
            dids,
            options,
            after,
        } => {
            let resolve = Resolve {
                dids: page.of(dids),
                options,
                caller,
            };
            let resolution = resolver.send(resolve).await??;
            match after.is_empty() {
                true => resolution,
                false => resolution.filtered(&after),
            }
        }
        Asked::Listing { options, whole } => {
            if config.oip_api.is_none() {
                return Err(RequestError::ListingNeedsIndexer.into());
            }
            let listing = listing(&req, options, whole, caller);
            resolver.send(listing).await??
        }
    };
    let cache = if resolution.answered_whole() {
        "HIT"
    } else {
        "MISS"
    };
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("X-Cache", cache))
        // Who asked shapes the answer: a shared cache must not hand one caller's to another.
        .insert_header((header::VARY, "Authorization"))
        .body(body(resolution.into_body(&auth, page))))
}

/// A body of pieces, sent one after the other with their length known, holding the answer's
/// share of the budget of answers in flight until it is sent or dropped.
fn body(
    (pieces, reservation): ([web::Bytes; 3], Option<Reservation>),
) -> actix_web::body::SizedStream<
    impl futures::Stream<Item = Result<web::Bytes, std::convert::Infallible>>,
> {
    let len = pieces.iter().map(|p| p.len() as u64).sum();
    let pieces = futures::stream::iter(pieces.into_iter().map(move |piece| {
        let _held = &reservation;
        Ok(piece)
    }));
    actix_web::body::SizedStream::new(len, pieces)
}

/// A listing as the indexer is asked for it: with its own `resolveDepth` 0, the records it lists
/// resolved here; or, when the query names a filter that reads resolved records (`whole`), as
/// the caller asked it, resolved and filtered by the indexer.
fn listing(req: &HttpRequest, mut options: Options, whole: bool, caller: Caller) -> ResolveListing {
    // The indexer filtered its listing by these already, as the old API did.
    options.roots = RootFilter::default();
    let query = match whole {
        true => {
            options.depth = 0;
            req.query_string().to_string()
        }
        false => indexer_query(req.query_string()),
    };
    ResolveListing {
        query,
        whole,
        options,
        caller,
        authorization: authorization(req),
    }
}

/// The query as the indexer gets it: the same, with its own `resolveDepth` 0, since the records
/// it lists are resolved here. Names are compared decoded (`resolve%44epth` is `resolveDepth`).
fn indexer_query(query: &str) -> String {
    query
        .split('&')
        .filter(|p| {
            let name = p.split('=').next().unwrap_or_default();
            !p.is_empty() && query::decode(name).is_ok_and(|n| n != "resolveDepth")
        })
        .chain(std::iter::once("resolveDepth=0"))
        .collect::<Vec<_>>()
        .join("&")
}

/// What a query asks for: records by DID, or (without `did`) a listing of the indexer's.
enum Asked {
    Dids {
        dids: Vec<Did>,
        options: Options,
        after: AfterResolution,
    },
    /// `whole`: the indexer answers it resolved (`summarizeRecipe` or a filter of
    /// `AfterResolution`: the old API computed both over what it resolved).
    Listing { options: Options, whole: bool },
}

fn invalid(name: &'static str, reason: impl Into<String>) -> ApiError {
    RequestError::InvalidParameter {
        name,
        reason: reason.into(),
    }
    .into()
}

/// A `true`/`false` parameter (any case); missing or empty is `default`.
fn flag(value: Option<&str>, name: &'static str, default: bool) -> Result<bool, ApiError> {
    match value {
        None | Some("") => Ok(default),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(_) => Err(invalid(name, "must be true or false")),
    }
}

fn parse(q: RecordsQuery, config: &ResolverConfig) -> Result<Asked, ApiError> {
    let options = options(&q, config)?;
    let after = AfterResolution::from_query(filters::Asked {
        record_type: given(&q.record_type),
        exercise_names: given(&q.exercise_names),
        exercise_dids: given(&q.exercise_dids),
        ingredient_names: given(&q.ingredient_names),
        has_audio: given(&q.has_audio),
    });
    let summarize = flag(q.summarize_recipe.as_deref(), "summarizeRecipe", false)?;
    let asked = [q.did, q.did_tx].into_iter().flatten();
    let Some(raw) = asked.into_iter().find(|d| !d.trim().is_empty()) else {
        let whole = summarize || !after.is_empty();
        return Ok(Asked::Listing { options, whole });
    };
    // A recipe's nutrition summary is the indexer's arithmetic (its unit conversions): with
    // one configured, it answers such a query whole; without, the records come without it.
    if summarize && config.oip_api.is_some() {
        return Ok(Asked::Listing {
            options,
            whole: true,
        });
    }
    let entries: Vec<&str> = raw.split(',').map(str::trim).collect();
    if entries.len() > MAX_DIDS {
        return Err(invalid(
            "did",
            format!("at most {MAX_DIDS} DIDs per request"),
        ));
    }
    let dids = entries
        .into_iter()
        .map(|d| {
            if d.is_empty() {
                Err(invalid("did", "empty entry in the list"))
            } else {
                Ok(Did::parse(d)?)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;

    Ok(Asked::Dids {
        dids,
        options,
        after,
    })
}

/// A parameter's text, when it says something.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|t| !t.is_empty())
}

fn options(q: &RecordsQuery, config: &ResolverConfig) -> Result<Options, ApiError> {
    let depth = match q.depth.as_deref() {
        None | Some("") => config.default_depth,
        Some(d) => d
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= config.max_depth)
            .ok_or_else(|| {
                invalid(
                    "resolveDepth",
                    format!("must be a whole number from 0 to {}", config.max_depth),
                )
            })?,
    };
    let names_only = flag(q.names_only.as_deref(), "resolveNamesOnly", false)?;
    let force_refresh = flag(q.force_refresh.as_deref(), "forceRefresh", false)?;
    let include_sigs = flag(q.include_sigs.as_deref(), "includeSigs", true)?;
    let include_pub_keys = flag(q.include_pub_keys.as_deref(), "includePubKeys", true)?;
    let fields = match q.fields.as_deref() {
        None | Some("") => FieldFilter::default(),
        Some(list) => {
            let names: Vec<String> = list.split(',').map(|f| f.trim().to_string()).collect();
            if names.len() > MAX_FIELD_NAMES {
                return Err(invalid(
                    "resolveFieldNames",
                    format!("at most {MAX_FIELD_NAMES} field names"),
                ));
            }
            let valid = |f: &String| {
                !f.is_empty()
                    && f.len() <= MAX_FIELD_NAME_LEN
                    && f.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
            };
            if !names.iter().all(valid) {
                return Err(invalid(
                    "resolveFieldNames",
                    "a comma-separated list of field names like workout.exercise",
                ));
            }
            FieldFilter::only(names)
        }
    };
    Ok(Options {
        depth,
        names_only,
        fields,
        force_refresh,
        include_sigs,
        include_pub_keys,
        hide_nulls: flag(q.hide_null_values.as_deref(), "hideNullValues", false)?,
        date_readable: !flag(q.hide_date_readable.as_deref(), "hideDateReadable", false)?,
        roots: RootFilter {
            record_type: given(&q.record_type).map(String::from),
            method: given(&q.source)
                .filter(|s| !s.eq_ignore_ascii_case("all"))
                .map(String::from),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(
        did: &str,
        depth: Option<&str>,
        names: Option<&str>,
        fields: Option<&str>,
    ) -> RecordsQuery {
        RecordsQuery {
            did: Some(did.to_string()),
            depth: depth.map(String::from),
            names_only: names.map(String::from),
            fields: fields.map(String::from),
            ..Default::default()
        }
    }

    fn code(r: Result<Asked, ApiError>) -> String {
        r.err().map(|e| e.code().to_string()).unwrap_or_default()
    }

    fn dids(asked: Asked) -> (Vec<Did>, Options) {
        match asked {
            Asked::Dids { dids, options, .. } => (dids, options),
            Asked::Listing { .. } => panic!("a DID was given"),
        }
    }

    #[test]
    fn defaults_and_lists() {
        let c = ResolverConfig::default();
        let (asked, options) =
            dids(parse(query("did:gun:a:1, did:gun:b:2", None, None, None), &c).unwrap());
        assert_eq!(asked.len(), 2);
        assert_eq!(options.depth, c.default_depth);
        assert!(!options.names_only);
        let (_, options) = dids(
            parse(
                query(
                    "did:gun:a:1",
                    Some("0"),
                    Some("TRUE"),
                    Some("workout,data.exercise.equipment"),
                ),
                &c,
            )
            .unwrap(),
        );
        assert_eq!(options.depth, 0);
        assert!(options.names_only);
        assert!(options.fields.selects("workout", "exercise"));
    }

    #[test]
    fn did_wins_over_did_tx_and_did_tx_alone_is_a_did() {
        let c = ResolverConfig::default();
        let both = RecordsQuery {
            did_tx: Some("did:gun:b:2".into()),
            ..query("did:gun:a:1", None, None, None)
        };
        let (asked, _) = dids(parse(both, &c).unwrap());
        assert_eq!(asked, [Did::parse("did:gun:a:1").unwrap()]);
        let alone = RecordsQuery {
            did_tx: Some("did:gun:b:2".into()),
            ..Default::default()
        };
        let (asked, _) = dids(parse(alone, &c).unwrap());
        assert_eq!(asked, [Did::parse("did:gun:b:2").unwrap()]);
        let empty_did = RecordsQuery {
            did: Some(" ".into()),
            did_tx: Some("did:gun:b:2".into()),
            ..Default::default()
        };
        assert_eq!(dids(parse(empty_did, &c).unwrap()).0.len(), 1);
    }

    #[test]
    fn bad_parameters_are_named() {
        let c = ResolverConfig::default();
        for depth in ["-1", "1.5", "6", "99999", "two"] {
            let err = parse(query("did:gun:a:1", Some(depth), None, None), &c)
                .err()
                .unwrap();
            assert!(err.to_string().contains("resolveDepth"), "{depth}: {err}");
        }
        assert_eq!(
            code(parse(query("did:gun:a:1", None, Some("yes"), None), &c)),
            "invalid_parameter"
        );
        assert_eq!(
            code(parse(query("did:gun:a:1", None, None, Some("a b")), &c)),
            "invalid_parameter"
        );
        assert_eq!(
            code(parse(query("gun:a:1", None, None, None), &c)),
            "invalid_did"
        );
        assert_eq!(
            code(parse(query("did:gun:a:1,,did:gun:b", None, None, None), &c)),
            "invalid_parameter"
        );
        let many = vec!["did:gun:a:1"; 51].join(",");
        assert_eq!(
            code(parse(query(&many, None, None, None), &c)),
            "invalid_parameter"
        );
        let fifty = vec!["did:gun:a:1"; 50].join(",");
        assert!(parse(query(&fifty, None, None, None), &c).is_ok());
    }

    #[test]
    fn without_a_did_it_is_a_listing_asked_of_the_indexer_at_depth_0() {
        let c = ResolverConfig::default();
        let mut q = query("", Some("3"), None, None);
        q.did = None;
        assert!(matches!(parse(q, &c), Ok(Asked::Listing { options: o, .. }) if o.depth == 3));
        assert_eq!(
            indexer_query("recordType=workout&resolveDepth=3&limit=10"),
            "recordType=workout&limit=10&resolveDepth=0"
        );
        assert_eq!(indexer_query(""), "resolveDepth=0");
        assert_eq!(
            indexer_query("resolve%44epth=5&recordType=workout"),
            "recordType=workout&resolveDepth=0"
        );
    }
}
