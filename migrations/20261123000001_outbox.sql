-- Development outbox: where mail goes when no SMTP server is configured.
CREATE TABLE outbox_emails (
    id          uuid PRIMARY KEY,
    to_address  text        NOT NULL,
    subject     text        NOT NULL,
    text_body   text        NOT NULL,
    html_body   text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_emails_created_at ON outbox_emails (created_at DESC);
