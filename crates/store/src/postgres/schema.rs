//! The PostgreSQL store's schema: the same tables as the SQLite store's, in PostgreSQL's types,
//! brought up to date by numbered migrations recorded in `portcullis_schema`. Rows whose order
//! the catalog keeps (grants, memberships, settings, assignments) carry a `seq` in insertion
//! order, as SQLite's `rowid` does.

/// The migrations, in order; a store records how many it has run.
pub const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE databases (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
CREATE TABLE users (
    id BIGINT PRIMARY KEY,
    database_id BIGINT NOT NULL REFERENCES databases(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    first_name TEXT,
    last_name TEXT,
    email TEXT,
    verifier TEXT NOT NULL,
    password_set_at BIGINT NOT NULL,
    state TEXT NOT NULL,
    failed_attempts BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    UNIQUE (database_id, name)
);
CREATE TABLE groups (
    id BIGINT PRIMARY KEY,
    database_id BIGINT NOT NULL REFERENCES databases(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (database_id, name)
);
CREATE TABLE roles (
    id BIGINT PRIMARY KEY,
    database_id BIGINT NOT NULL REFERENCES databases(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    UNIQUE (database_id, name)
);
CREATE TABLE grants (
    seq BIGSERIAL,
    grantee_kind TEXT NOT NULL,
    grantee_id BIGINT NOT NULL,
    privilege TEXT NOT NULL,
    object_kind TEXT NOT NULL,
    object_id BIGINT NOT NULL,
    grantor TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (grantee_kind, grantee_id, privilege, object_kind, object_id)
);
CREATE TABLE group_members (
    seq BIGSERIAL,
    group_id BIGINT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE TABLE role_members (
    seq BIGSERIAL,
    role_id BIGINT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    member_kind TEXT NOT NULL,
    member_id BIGINT NOT NULL,
    PRIMARY KEY (role_id, member_kind, member_id)
);
CREATE TABLE settings (
    seq BIGSERIAL,
    scope_kind TEXT NOT NULL,
    scope_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (scope_kind, scope_id, name)
);
CREATE TABLE password_history (
    seq BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    verifier TEXT NOT NULL,
    set_at BIGINT NOT NULL
);
CREATE TABLE sso_integrations (
    id BIGINT PRIMARY KEY,
    database_id BIGINT NOT NULL REFERENCES databases(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    protocol TEXT NOT NULL,
    properties TEXT NOT NULL,
    sealed_secret BYTEA,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (database_id, name)
);
CREATE TABLE connectivity_pools (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    listen TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    advertised TEXT
);
CREATE TABLE sso_assignments (
    seq BIGSERIAL,
    target_kind TEXT NOT NULL,
    target_id BIGINT NOT NULL,
    integration_id BIGINT NOT NULL REFERENCES sso_integrations(id) ON DELETE CASCADE,
    PRIMARY KEY (target_kind, target_id)
);
CREATE TABLE id_high_water (high BIGINT NOT NULL);
INSERT INTO id_high_water VALUES (0);
CREATE TABLE authentication_events (
    id BIGINT PRIMARY KEY,
    at_micros BIGINT NOT NULL,
    kind TEXT NOT NULL,
    method TEXT NOT NULL,
    identity TEXT NOT NULL,
    database_id BIGINT NOT NULL,
    database_name TEXT NOT NULL,
    integration TEXT,
    peer TEXT NOT NULL,
    application TEXT,
    result TEXT NOT NULL,
    reason TEXT,
    detail TEXT NOT NULL,
    session_id TEXT,
    token_id TEXT
);
CREATE INDEX authentication_events_at ON authentication_events (at_micros);
CREATE TABLE upstreams (
    database_id BIGINT PRIMARY KEY REFERENCES databases(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    sealed_password BYTEA NOT NULL,
    updated_at BIGINT NOT NULL
);
"#,
    // Several nodes (issue 15, item 3): the catalog's version, which every commit raises (a commit
    // based on an older one is refused: no lost update), and a number for every node start.
    r#"
CREATE TABLE portcullis_catalog_version (
    id INT PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO portcullis_catalog_version VALUES (1, 0);
CREATE SEQUENCE portcullis_nodes;
CREATE TABLE portcullis_key_check (
    id INT PRIMARY KEY CHECK (id = 1),
    sealed BYTEA NOT NULL
);
CREATE TABLE portcullis_pending (
    key TEXT PRIMARY KEY,
    sealed BYTEA NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX portcullis_pending_expiry ON portcullis_pending (expires_at);
"#,
    // Every node's sessions, published by each node every second (`sys.sessions` on any node lists
    // them all), when each node was last seen, and END SESSION for a session another node holds.
    r#"
CREATE TABLE portcullis_sessions (
    id TEXT PRIMARY KEY,
    node BIGINT NOT NULL,
    row_json TEXT NOT NULL
);
CREATE INDEX portcullis_sessions_node ON portcullis_sessions (node);
CREATE TABLE portcullis_node_seen (
    node BIGINT PRIMARY KEY,
    seen_at BIGINT NOT NULL
);
CREATE TABLE portcullis_session_ends (
    id TEXT PRIMARY KEY,
    node BIGINT NOT NULL,
    by_user TEXT NOT NULL
);
"#,
    // An HTTP session may be held by several nodes at once (its token was used on each), so a
    // published session and an END SESSION request are per node.
    r#"
ALTER TABLE portcullis_sessions DROP CONSTRAINT portcullis_sessions_pkey;
ALTER TABLE portcullis_sessions ADD PRIMARY KEY (node, id);
CREATE INDEX portcullis_sessions_id ON portcullis_sessions (id);
ALTER TABLE portcullis_session_ends DROP CONSTRAINT portcullis_session_ends_pkey;
ALTER TABLE portcullis_session_ends ADD PRIMARY KEY (id, node);
"#,
    // The change log: what each catalog version changed, so nodes follow changes one by one.
    r#"
CREATE TABLE portcullis_changes (
    version BIGINT PRIMARY KEY,
    changes TEXT NOT NULL
);
"#,
];
