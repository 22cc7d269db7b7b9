-- Cleans the listing records the scrapers publish (Rightmove, Zoopla, realtor.com and
-- the like) into one shape for the listings tables, keyed by a stable listing key: the
-- SQL twin of clean_listing.vrl, with the same output on the same records.
--
-- In:  the columns declared beside this query: id, url, price, beds, baths, address and
--      postcode as text (a number arrives as its text), _meta as a struct.
-- Out: listing_key, source, listing_id, url, currency, price_label,
--      monthly_price_minor, beds, baths, address, postcode, outward_code, scraped_at,
--      with the Kafka key (_key) set to listing_key.
--
-- A record without an id fails (_error), so it goes to the dead-letter topic with the
-- reason. Where VRL asks a value's JSON type, this query asks its shape: a price written
-- as text that is a bare number ("2450") counts as dollars here, as a label in VRL.
WITH fields AS (
  SELECT
    -- The page's host, lower case, as a URL parser gives it.
    lower(coalesce(regexp_match(_meta['sourceUrl'],
      '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?(\[[^\]]*\]|[^:/?#]*)')[1], '')) AS host,
    coalesce(_meta['job'], 'unknown') AS job,
    _meta['scrapedAt'] AS scraped_at,
    regexp_replace(coalesce(id, ''), '^\s+|\s+$', '', 'g') AS listing_id,
    url,
    -- A number (its text, in the shape JSON writes numbers), else null.
    price,
    CASE WHEN regexp_like(price, '^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$')
      THEN TRY_CAST(price AS DOUBLE) END AS price_number,
    beds,
    CASE WHEN regexp_like(beds, '^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$')
      THEN TRY_CAST(beds AS DOUBLE) END AS beds_number,
    baths,
    CASE WHEN regexp_like(baths, '^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$')
      THEN TRY_CAST(baths AS DOUBLE) END AS baths_number,
    -- One line, single spaces, no space before a comma (one portal escapes a newline
    -- into the text, another writes "Street , Area").
    nullif(btrim(replace(regexp_replace(replace(coalesce(address, ''), '\n', ' '),
      '\s+', ' ', 'g'), ' ,', ',')), '') AS address,
    regexp_replace(postcode, '^\s+|\s+$', '', 'g') AS postcode
  FROM records
),
named AS (
  SELECT *,
    -- The portal ("rightmove", "zoopla", "realtor") from the page's host, so that the
    -- key survives a renamed ScrapeJob; the job name when there is no page URL or the
    -- host names no portal (an IP address or localhost, as on the demo site).
    CASE
      WHEN regexp_replace(host, '^www\.', '') = ''
        OR regexp_replace(host, '^www\.', '') = 'localhost'
        OR regexp_like(regexp_replace(host, '^www\.', ''), '^[0-9.]+$|^\[')
      THEN lower(regexp_replace(job, '^.*/', ''))
      ELSE split_part(regexp_replace(host, '^www\.', ''), '.', 1)
    END AS source,
    CASE WHEN price_number IS NULL
      THEN btrim(regexp_replace(price, '\s+', ' ', 'g')) END AS price_text,
    regexp_match(upper(coalesce(address, '')),
      '(?:^|[\s,])([A-Z]{1,2}[0-9][A-Z0-9]?)(?:\s+([0-9][A-Z]{2}))?$') AS uk
  FROM fields
),
priced AS (
  SELECT *,
    -- A label such as "£2,300 pcm", "£550 pw", "FEATURED PROPERTY £3,000 pcm" (the
    -- label is "£3,000 pcm") or "POA".
    coalesce(regexp_match(price_text,
      '([£$€]\s*[0-9].*|[0-9][0-9,.]*\s*[a-zA-Z/ ]*)$')[1], price_text) AS label
  FROM named
),
amounts AS (
  SELECT *,
    regexp_match(label, '([0-9][0-9,]*)(?:\.([0-9]{1,2}))?') AS amount
  FROM priced
),
monthly AS (
  SELECT *,
    -- In minor units (pence or cents), a month's worth.
    (CAST(CAST(replace(amount[1], ',', '') AS BIGINT) AS DOUBLE) * 100.0
      + coalesce(CAST(nullif(amount[2], '') AS DOUBLE), 0.0))
    * CASE
        WHEN regexp_like(lower(label), '\b(pw|p/w|per week|weekly)\b') THEN 52.0 / 12.0
        WHEN regexp_like(lower(label), '\b(pa|p/a|per annum|per year|yearly|annually)\b') THEN 1.0 / 12.0
        ELSE 1.0
      END AS label_minor
  FROM amounts
)
SELECT
  source || ':' || listing_id AS _key,
  CASE WHEN listing_id = '' THEN 'record has no id' END AS _error,
  source || ':' || listing_id AS listing_key,
  source,
  listing_id,
  -- Relative listing links resolve against the page they were found on.
  CASE WHEN starts_with(url, '/') AND host <> '' THEN 'https://' || host || url ELSE url END AS url,
  CASE
    WHEN price_number IS NOT NULL THEN 'USD'
    WHEN strpos(price_text, '£') > 0 THEN 'GBP'
    WHEN strpos(price_text, '€') > 0 THEN 'EUR'
    WHEN strpos(price_text, '$') > 0 THEN 'USD'
  END AS currency,
  -- A bare number is a monthly rent in dollars, as the REST API gives it.
  CASE WHEN price_number IS NOT NULL THEN price ELSE label END AS price_label,
  CAST(round(coalesce(price_number * 100.0, label_minor)) AS BIGINT) AS monthly_price_minor,
  -- Beds and baths: a whole non-negative number as it is, "Studio" 0 beds, else the
  -- first digits of the text ("2 beds"), 0 when it has none (as VRL's to_int(null)).
  CASE
    WHEN beds IS NULL THEN NULL
    WHEN beds_number >= 0 AND beds_number < 1e15 AND floor(beds_number) = beds_number
      THEN CAST(beds_number AS BIGINT)
    WHEN strpos(lower(beds), 'studio') > 0 THEN 0
    WHEN regexp_match(beds, '([0-9]+)') IS NULL THEN 0
    ELSE TRY_CAST(regexp_match(beds, '([0-9]+)')[1] AS BIGINT)
  END AS beds,
  CASE
    WHEN baths IS NULL THEN NULL
    WHEN baths_number >= 0 AND baths_number < 1e15 AND floor(baths_number) = baths_number
      THEN CAST(baths_number AS BIGINT)
    WHEN strpos(lower(baths), 'studio') > 0 THEN 0
    WHEN regexp_match(baths, '([0-9]+)') IS NULL THEN 0
    ELSE TRY_CAST(regexp_match(baths, '([0-9]+)')[1] AS BIGINT)
  END AS baths,
  address,
  -- A postcode field (a US ZIP code) is kept as text; else the UK one in the address.
  CASE WHEN postcode IS NULL AND uk[2] IS NOT NULL THEN uk[1] || ' ' || uk[2] ELSE postcode END AS postcode,
  uk[1] AS outward_code,
  scraped_at
FROM monthly
