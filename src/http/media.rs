//! Media routes: the handlers ask the `MediaActor` for an open file, then answer with RFC 9110
//! ranges and conditional requests. Media bodies are never compressed.

use std::str::FromStr;

use actix::Addr;
use actix_web::{
    body::SizedStream,
    http::{
        header::{self, HttpDate},
        Method, StatusCode,
    },
    web, HttpRequest, HttpResponse, HttpResponseBuilder,
};
use bytes::Bytes;
use serde::Deserialize;

use super::{method_not_allowed, AppState};
use crate::{
    error::ApiError,
    media::{
        range::{decide, etag, if_range_allows, tag_list_matches, ByteRange, RangeDecision},
        stream::{FileStream, Part},
        Info, MediaActor, MediaFile, Open, Target,
    },
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/media/{mediaId}/info")
            .route(web::get().to(info))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/api/media/{mediaId}")
            .route(web::get().to(media))
            .route(web::head().to(media))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/media")
            .route(web::get().to(legacy))
            .route(web::head().to(legacy))
            .default_service(web::to(method_not_allowed)),
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
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
        .or(query)
}

async fn media(
    req: HttpRequest,
    state: web::Data<AppState>,
    actor: web::Data<Addr<MediaActor>>,
    id: web::Path<String>,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, ApiError> {
    let token = token(&req, query.into_inner().token);
    let file = actor
        .send(Open {
            target: Target::Media(id.into_inner()),
            token,
        })
        .await??;
    respond(&req, &state, actor.get_ref(), file)
}

async fn legacy(
    req: HttpRequest,
    state: web::Data<AppState>,
    actor: web::Data<Addr<MediaActor>>,
    query: web::Query<LegacyQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let id = query
        .id
        .filter(|i| !i.is_empty())
        .ok_or(ApiError::MissingParameter("id"))?;
    let file = actor
        .send(Open {
            target: Target::Legacy(id),
            token: token(&req, query.token),
        })
        .await??;
    respond(&req, &state, actor.get_ref(), file)
}

async fn info(
    req: HttpRequest,
    actor: web::Data<Addr<MediaActor>>,
    id: web::Path<String>,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, ApiError> {
    let token = token(&req, query.into_inner().token);
    let manifest = actor
        .send(Info {
            id: id.into_inner(),
            token,
        })
        .await??;
    Ok(HttpResponse::Ok().json(manifest))
}

fn header_str(req: &HttpRequest, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Conditionals first (RFC 9110 §13.2.2), then the range.
fn respond(
    req: &HttpRequest,
    state: &AppState,
    actor: &Addr<MediaActor>,
    file: MediaFile,
) -> Result<HttpResponse, ApiError> {
    let tag = etag(file.len, file.modified);
    let last_modified = HttpDate::from(file.modified).to_string();
    let res = |status: StatusCode| {
        let mut b = HttpResponse::build(status);
        b.insert_header((header::ETAG, tag.as_str()))
            .insert_header((header::LAST_MODIFIED, last_modified.as_str()))
            .insert_header((
                header::CACHE_CONTROL,
                state.config.media.cache_control.as_str(),
            ))
            .insert_header((header::ACCEPT_RANGES, "bytes"));
        b
    };

    if let Some(list) = header_str(req, header::IF_MATCH) {
        if !tag_list_matches(list, &tag, false) {
            return Err(ApiError::PreconditionFailed);
        }
    }
    let not_modified = match header_str(req, header::IF_NONE_MATCH) {
        Some(list) => tag_list_matches(list, &tag, true),
        None => header_str(req, header::IF_MODIFIED_SINCE)
            .and_then(|d| HttpDate::from_str(d).ok())
            .is_some_and(|since| {
                // Last-Modified has one-second precision: compare at that precision.
                std::time::SystemTime::from(since) >= truncate_to_secs(file.modified)
            }),
    };
    if not_modified {
        return Ok(res(StatusCode::NOT_MODIFIED).finish());
    }

    let range = header_str(req, header::RANGE)
        .filter(|_| if_range_allows(header_str(req, header::IF_RANGE), &tag, &last_modified));
    let head = req.method() == Method::HEAD;
    let (status, parts, content_type, content_range) = match decide(range, file.len) {
        RangeDecision::Full => (
            StatusCode::OK,
            vec![Part::File {
                offset: 0,
                len: file.len,
            }],
            file.content_type.clone(),
            None,
        ),
        RangeDecision::Partial(ranges) if ranges.len() == 1 => {
            let r = ranges[0];
            (
                StatusCode::PARTIAL_CONTENT,
                vec![file_part(r)],
                file.content_type.clone(),
                Some(r.content_range(file.len)),
            )
        }
        RangeDecision::Partial(ranges) => {
            let boundary = format!("oip-{:016x}", fastrand::u64(..));
            let parts = multipart(&ranges, file.len, &file.content_type, &boundary);
            (
                StatusCode::PARTIAL_CONTENT,
                parts,
                format!("multipart/byteranges; boundary={boundary}"),
                None,
            )
        }
        RangeDecision::Unsatisfiable => {
            return Err(ApiError::RangeNotSatisfiable(file.len));
        }
    };
    let mut builder: HttpResponseBuilder = res(status);
    builder.insert_header((header::CONTENT_TYPE, content_type));
    if let Some(cr) = content_range {
        builder.insert_header((header::CONTENT_RANGE, cr));
    }
    let len: u64 = parts
        .iter()
        .map(|p| match p {
            Part::Bytes(b) => b.len() as u64,
            Part::File { len, .. } => *len,
        })
        .sum();
    if head {
        // Same headers, no body: the file is closed here and no stream is opened.
        return Ok(builder.body(SizedStream::new(
            len,
            futures::stream::empty::<Result<Bytes, std::io::Error>>(),
        )));
    }
    let body = FileStream::new(file.file, parts, actor.clone(), state.metrics.clone());
    Ok(builder.body(SizedStream::new(body.len(), body)))
}

fn file_part(r: ByteRange) -> Part {
    Part::File {
        offset: r.start,
        len: r.len(),
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

fn truncate_to_secs(t: std::time::SystemTime) -> std::time::SystemTime {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)
}
