-- Sample ERP schema: what the built-in Postgres CDC source and connectors/mappings/erp expect.
-- Money is stored in minor units (cents) as bigint, as many ERPs do; the mappings turn it into
-- decimals. Invoices, shipments and order lines carry the customer number of their order so that
-- their canonical events can be keyed by the customer's canonical account id without a lookup.
-- REPLICA IDENTITY FULL makes updates and deletes carry the complete before image.

CREATE TABLE IF NOT EXISTS customers (
    customer_number     text PRIMARY KEY,
    name                text NOT NULL,
    legal_name          text,
    tax_id              text,
    payment_terms       text NOT NULL DEFAULT 'N30',
    credit_limit_minor  bigint NOT NULL DEFAULT 0,
    credit_hold         boolean NOT NULL DEFAULT false,
    currency            char(3) NOT NULL DEFAULT 'EUR',
    web_domain          text,
    phone               text,
    crm_id              text,
    billing_line1       text,
    billing_city        text,
    billing_postal_code text,
    billing_country     char(2),
    shipping_line1      text,
    shipping_city       text,
    shipping_postal_code text,
    shipping_country    char(2),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS products (
    sku               text PRIMARY KEY,
    item_number       text,
    name              text NOT NULL,
    description       text,
    unit_of_measure   text NOT NULL DEFAULT 'EA',
    unit_price_minor  bigint NOT NULL,
    currency          char(3) NOT NULL DEFAULT 'EUR',
    active            boolean NOT NULL DEFAULT true,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS sales_orders (
    order_number      text PRIMARY KEY,
    customer_number   text NOT NULL REFERENCES customers (customer_number),
    quote_id          text,
    quote_revision    integer,
    crm_deal_id       text,
    customer_po       text,
    status            text NOT NULL DEFAULT 'OPEN',
    credit_hold       boolean NOT NULL DEFAULT false,
    currency          char(3) NOT NULL DEFAULT 'EUR',
    subtotal_minor    bigint NOT NULL DEFAULT 0,
    tax_minor         bigint NOT NULL DEFAULT 0,
    total_minor       bigint NOT NULL DEFAULT 0,
    payment_terms     text,
    promised_date     date,
    ordered_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS sales_order_lines (
    order_number      text NOT NULL REFERENCES sales_orders (order_number) ON DELETE CASCADE,
    line_number       integer NOT NULL,
    customer_number   text NOT NULL,
    sku               text NOT NULL,
    description       text,
    quantity          numeric(18, 4) NOT NULL,
    unit_price_minor  bigint NOT NULL,
    line_total_minor  bigint NOT NULL,
    promised_date     date,
    PRIMARY KEY (order_number, line_number)
);

CREATE TABLE IF NOT EXISTS invoices (
    invoice_number    text PRIMARY KEY,
    order_number      text REFERENCES sales_orders (order_number),
    customer_number   text NOT NULL,
    amount_minor      bigint NOT NULL,
    tax_minor         bigint NOT NULL DEFAULT 0,
    paid_minor        bigint NOT NULL DEFAULT 0,
    currency          char(3) NOT NULL DEFAULT 'EUR',
    status            text NOT NULL DEFAULT 'OPEN',
    issued_date       date NOT NULL DEFAULT current_date,
    due_date          date,
    paid_at           timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS shipments (
    shipment_number   text PRIMARY KEY,
    order_number      text REFERENCES sales_orders (order_number),
    customer_number   text NOT NULL,
    status            text NOT NULL DEFAULT 'PENDING',
    carrier           text,
    tracking_number   text,
    shipped_at        timestamptz,
    delivered_at      timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE customers REPLICA IDENTITY FULL;
ALTER TABLE products REPLICA IDENTITY FULL;
ALTER TABLE sales_orders REPLICA IDENTITY FULL;
ALTER TABLE sales_order_lines REPLICA IDENTITY FULL;
ALTER TABLE invoices REPLICA IDENTITY FULL;
ALTER TABLE shipments REPLICA IDENTITY FULL;
