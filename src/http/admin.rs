//! Operator endpoints, behind `auth.admin_token`.

use actix_web::{web, HttpRequest, HttpResponse};

use super::{bearer, compressed, error::RequestError, AppState};
use crate::{
    auth::same_secret, did::Did, error::ApiError, gun::fetcher::ForgetSoul, soul::validate_soul,
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(compressed("/api/cache/negative/{soul}").route(web::delete().to(forget_missing)));
}

async fn forget_missing(
    state: web::Data<AppState>,
    req: HttpRequest,
    soul: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let Some(token) = state.config.auth.admin_token.as_deref() else {
        return Err(RequestError::NotConfigured("the admin API (auth.admin_token)").into());
    };
    if !bearer(&req).is_some_and(|given| same_secret(given, token)) {
        return Err(RequestError::Unauthorized.into());
    }
    let soul = soul.into_inner();
    // A DID of another method (cached from the indexer) can be forgotten by its full name.
    let key = if soul.starts_with("did:") {
        Did::parse(&soul)?
    } else {
        validate_soul(&soul)?;
        Did::Gun(soul.clone())
    };
    // Through the fetcher, as a write: out of every cache and of its memory of malformed
    // records, and a fetch of it on its way caches nothing.
    let forgotten = state.gun.fetcher.send(ForgetSoul(key)).await?;
    log::info!("[GUN 404 Cache] operator forgot {soul} (was cached: {forgotten})");
    Ok(HttpResponse::Ok().json(serde_json::json!({"soul": soul, "forgotten": forgotten})))
}
