// @generated from the migrations by `STATION_BLESS=1 cargo test --test api schema`; do not edit.

diesel::table! {
    device_tokens (id) {
        id -> BigInt,
        label -> Text,
        key_hash -> Text,
        prefix -> Text,
        scopes -> Text,
        station -> Nullable<Text>,
        created -> BigInt,
        last_used -> Nullable<BigInt>,
        expires -> Nullable<BigInt>,
    }
}

diesel::table! {
    idempotency_keys (caller, idempotency_key) {
        caller -> Text,
        idempotency_key -> Text,
        claim -> Text,
        request_hash -> Nullable<Text>,
        status -> Nullable<BigInt>,
        location -> Nullable<Text>,
        body -> Nullable<Text>,
        expires_at -> BigInt,
    }
}

diesel::table! {
    service_keys (name) {
        name -> Text,
        secret -> Text,
    }
}

diesel::table! {
    station (id) {
        id -> BigInt,
        name -> Text,
        timestamp -> BigInt,
        temperature -> Double,
        lat -> Double,
        lon -> Double,
    }
}

diesel::table! {
    station_bulk_insert (singleton) {
        singleton -> BigInt,
    }
}

diesel::table! {
    station_changes (id) {
        id -> BigInt,
        kind -> Text,
        station_id -> BigInt,
        name -> Text,
        timestamp -> BigInt,
        temperature -> Double,
        lat -> Double,
        lon -> Double,
        changed_at -> BigInt,
    }
}

diesel::table! {
    station_changes_pruned (singleton) {
        singleton -> BigInt,
        through_id -> BigInt,
    }
}

diesel::table! {
    station_count (shard) {
        shard -> BigInt,
        readings -> BigInt,
    }
}

diesel::table! {
    users (id) {
        id -> BigInt,
        username -> Text,
        password_hash -> Text,
        is_staff -> Bool,
        is_superuser -> Bool,
        is_active -> Bool,
        date_joined -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    device_tokens,
    idempotency_keys,
    service_keys,
    station,
    station_bulk_insert,
    station_changes,
    station_changes_pruned,
    station_count,
    users
);
