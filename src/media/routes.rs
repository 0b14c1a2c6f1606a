//! Media routes: the handlers ask the feature for an open file, then answer with RFC 9110
//! ranges and conditional requests. Media bodies are never compressed.

use actix_web::{
    body::SizedStream,
    http::{header, Method, StatusCode},
    web, HttpRequest, HttpResponse, HttpResponseBuilder,
};
use bytes::Bytes;
use serde::Deserialize;

use super::{
    actor::{Folder, MediaFile, Open, Target},
    client::Client,
    config::MediaConfig,
    error::MediaError,
    manifest::browser_safe,
    range::{ByteRange, Conditions, Plan},
    stream::{FileStream, Part},
};
use crate::{
    error::ApiError,
    http::{
        client::client_of,
        error::RequestError,
        query::StrictQuery,
        request::{bearer, resource},
    },
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    // The hot route first: routes are tried in order, and a segment never holds a `/`, so
    // `/info` cannot be taken for a media id.
    cfg.service(
        resource("/api/media/{mediaId}")
            .route(web::get().to(media))
            .route(web::head().to(media)),
    )
    .service(resource("/api/media/{mediaId}/info").route(web::get().to(info)))
    // The old service's URLs, stored in published records: its API router was mounted at
    // /api (so its media route is /api/media?id=), and its static files at /media/<path>.
    .service(
        resource("/api/media")
            .route(web::get().to(legacy))
            .route(web::head().to(legacy)),
    )
    .service(
        resource("/media")
            .route(web::get().to(legacy))
            .route(web::head().to(legacy)),
    )
    .service(
        resource("/media/{path:.+}")
            .route(web::get().to(legacy_static))
            .route(web::head().to(legacy_static)),
    );
}

#[derive(Deserialize)]
struct TokenQuery {
    /// For players that cannot send headers (`<video src>`): the same JWT as the bearer token.
    token: Option<String>,
}

#[derive(Deserialize)]
struct LegacyQuery {
    id: Option<String>,
    token: Option<String>,
}

/// The bearer token, or the `token` query parameter.
fn token(req: &HttpRequest, query: Option<String>) -> Option<String> {
    bearer(req).map(String::from).or(query)
}

async fn media(
    req: HttpRequest,
    media: web::Data<Client>,
    id: web::Path<String>,
    query: StrictQuery<TokenQuery>,
) -> Result<HttpResponse, ApiError> {
    serve(
        req,
        media,
        Target::Media(id.into_inner()),
        query.into_inner().token,
    )
    .await
}

async fn legacy(
    req: HttpRequest,
    media: web::Data<Client>,
    query: StrictQuery<LegacyQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let id = query
        .id
        .filter(|i| !i.is_empty())
        .ok_or(RequestError::MissingParameter("id"))?;
    // `/api/media?id=` was the old API's media folder; `/media?id=` names what `/media/<path>`
    // serves, its static folder.
    let folder = match req.path() {
        "/api/media" => Folder::Api,
        _ => Folder::Static,
    };
    serve(req, media, Target::Legacy(folder, id), query.token).await
}

async fn legacy_static(
    req: HttpRequest,
    media: web::Data<Client>,
    path: web::Path<String>,
    query: StrictQuery<TokenQuery>,
) -> Result<HttpResponse, ApiError> {
    let target = Target::Legacy(Folder::Static, path.into_inner());
    serve(req, media, target, query.into_inner().token).await
}

/// Every file route: answered from the open-file cache when the target was opened lately, else
/// opened by the actor; then the plan made for it is answered.
async fn serve(
    req: HttpRequest,
    media: web::Data<Client>,
    target: Target,
    query_token: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let token = token(&req, query_token);
    let file = media.open(open_message(&req, target, token)).await?;
    respond(&req, &media, file)
}

async fn info(
    req: HttpRequest,
    media: web::Data<Client>,
    id: web::Path<String>,
    query: StrictQuery<TokenQuery>,
) -> Result<HttpResponse, ApiError> {
    let token = token(&req, query.into_inner().token);
    let manifest = media.info(id.into_inner(), token).await?;
    let mut res = HttpResponse::Ok();
    caching(
        &mut res,
        &media.config().cache_control,
        !manifest.is_public(),
    );
    // The old service added whether its torrent seeder held the file; this one seeds nothing.
    let mut body = serde_json::to_value(&manifest).unwrap_or_default();
    if let serde_json::Value::Object(fields) = &mut body {
        fields.insert("seeding".into(), false.into());
        fields.insert("seedingInfo".into(), serde_json::Value::Null);
    }
    Ok(res.json(body))
}

/// `Cache-Control` from `media.cache_control`; an answer that needed a token is `private` (with
/// the configured max-age) and varies with `Authorization`, so no shared cache hands it to
/// someone else.
fn caching(res: &mut HttpResponseBuilder, cache_control: &str, private: bool) {
    if !private {
        res.insert_header((header::CACHE_CONTROL, cache_control));
        return;
    }
    let shared = ["public", "s-maxage", "proxy-revalidate", "private"];
    let kept = cache_control
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .filter(|d| {
            let name = d.split('=').next().unwrap_or_default();
            !shared.iter().any(|s| name.eq_ignore_ascii_case(s))
        });
    let value = std::iter::once("private")
        .chain(kept)
        .collect::<Vec<_>>()
        .join(", ");
    res.insert_header((header::CACHE_CONTROL, value))
        .insert_header((header::VARY, "Authorization"));
}

fn header_str(req: &HttpRequest, name: header::HeaderName) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}

/// The headers the answer depends on, handed to the actor so the blocking open can plan it.
fn conditions(req: &HttpRequest) -> Conditions {
    Conditions {
        range: header_str(req, header::RANGE),
        if_range: header_str(req, header::IF_RANGE),
        if_match: header_str(req, header::IF_MATCH),
        if_none_match: header_str(req, header::IF_NONE_MATCH),
        if_modified_since: header_str(req, header::IF_MODIFIED_SINCE),
    }
}

fn open_message(req: &HttpRequest, target: Target, token: Option<String>) -> Open {
    Open {
        target,
        token,
        conditions: conditions(req),
        head: req.method() == Method::HEAD,
    }
}

/// Turns the planned answer into a response; the body streams what was not prefetched.
fn respond(req: &HttpRequest, media: &Client, file: MediaFile) -> Result<HttpResponse, ApiError> {
    let res = |status: StatusCode| answer(status, &file, media.config());
    let (status, parts, content_type, content_range) = match &file.plan {
        Plan::PreconditionFailed => return Err(ApiError::from(MediaError::PreconditionFailed)),
        Plan::NotModified => return Ok(res(StatusCode::NOT_MODIFIED).finish()),
        Plan::Unsatisfiable => {
            return Err(ApiError::from(MediaError::RangeNotSatisfiable(file.len)))
        }
        Plan::Full => (
            StatusCode::OK,
            vec![Part::File {
                offset: 0,
                len: file.len,
            }],
            file.content_type.clone(),
            None,
        ),
        Plan::Partial(ranges) if ranges.len() == 1 => (
            StatusCode::PARTIAL_CONTENT,
            vec![file_part(ranges[0])],
            file.content_type.clone(),
            Some(ranges[0].content_range(file.len)),
        ),
        Plan::Partial(ranges) => {
            let boundary = format!("oip-{:016x}", fastrand::u64(..));
            (
                StatusCode::PARTIAL_CONTENT,
                multipart(ranges, file.len, &file.content_type, &boundary),
                format!("multipart/byteranges; boundary={boundary}"),
                None,
            )
        }
    };
    let mut builder: HttpResponseBuilder = res(status);
    builder.insert_header((header::CONTENT_TYPE, content_type));
    if let Some(cr) = content_range {
        builder.insert_header((header::CONTENT_RANGE, cr));
    }
    if req.method() == Method::HEAD {
        // Same headers, no body: the file is closed here and no stream is opened.
        let len = parts.iter().map(Part::size).sum();
        let nothing = futures::stream::empty::<Result<Bytes, std::io::Error>>();
        return Ok(builder.body(SizedStream::new(len, nothing)));
    }
    let parts = with_prefetch(parts, file.prefetched);
    let client = client_of(req, media.trusted_proxies());
    let body = FileStream::new(file.file, parts, file.registry, media.actor(), client)?;
    Ok(builder.body(SizedStream::new(body.content_length(), body)))
}

/// A response with the headers every answer about `file` carries: its validators, caching by
/// its privacy, and a sandbox for content a browser would run.
fn answer(status: StatusCode, file: &MediaFile, settings: &MediaConfig) -> HttpResponseBuilder {
    let validators = &file.validators;
    // The old service sent a year of immutable caching for its static images.
    let cache_control = if file.legacy && file.content_type.starts_with("image/") {
        &settings.legacy_cache_control
    } else {
        &settings.cache_control
    };
    let mut b = HttpResponse::build(status);
    b.insert_header((header::ETAG, validators.etag.as_str()))
        .insert_header((header::LAST_MODIFIED, validators.last_modified.as_str()))
        .insert_header((header::ACCEPT_RANGES, "bytes"));
    caching(&mut b, cache_control, file.private);
    if !browser_safe(&file.content_type) {
        // Served from the API's origin, an uploaded page or SVG would run with its rights.
        b.insert_header((header::CONTENT_SECURITY_POLICY, "sandbox"))
            .insert_header((header::CONTENT_DISPOSITION, "attachment"));
    }
    b
}

/// Puts the bytes read at open time in place of the start of the first file span.
fn with_prefetch(parts: Vec<Part>, prefetched: Bytes) -> Vec<Part> {
    let mut out = Vec::with_capacity(parts.len() + 1);
    let mut pending = Some(prefetched).filter(|p| !p.is_empty());
    for part in parts {
        match (part, pending.take()) {
            (Part::File { offset, len }, Some(bytes)) => {
                let n = bytes.len() as u64;
                out.push(Part::Bytes(bytes));
                if len > n {
                    out.push(Part::File {
                        offset: offset + n,
                        len: len - n,
                    });
                }
            }
            (part, unused) => {
                pending = unused;
                out.push(part);
            }
        }
    }
    out
}

fn file_part(r: ByteRange) -> Part {
    Part::File {
        offset: r.start,
        len: r.size(),
    }
}

fn multipart(ranges: &[ByteRange], total: u64, content_type: &str, boundary: &str) -> Vec<Part> {
    let mut parts = Vec::with_capacity(ranges.len() * 2 + 1);
    for (i, r) in ranges.iter().enumerate() {
        let lead = if i == 0 { "" } else { "\r\n" };
        parts.push(Part::Bytes(Bytes::from(format!(
            "{lead}--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: {}\r\n\r\n",
            r.content_range(total)
        ))));
        parts.push(file_part(*r));
    }
    parts.push(Part::Bytes(Bytes::from(format!("\r\n--{boundary}--\r\n"))));
    parts
}
