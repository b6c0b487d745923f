-- Phones in E.164 form (+<country code><number>): a national number written with
-- settings.default_country gets its calling code (journey._e164, src/model/phone.rs). Look-ups
-- by phone (upsert_contact, form submissions matched on phone) normalize the value they look up
-- the same way, so a number matches however it was written.

CREATE FUNCTION journey._on_contact_phone() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    -- an update that leaves the phone as it was (upsert_contact sets every column) keeps it,
    -- even one stored before 0.3.0 in another form
    IF TG_OP = 'UPDATE' AND NEW.phone IS NOT DISTINCT FROM OLD.phone THEN
        RETURN NEW;
    END IF;
    NEW.phone := journey._e164(NEW.phone, (SELECT s.default_country FROM journey.settings s));
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION journey._on_contact_phone() IS
  'Trigger: stores a contact''s phone in E.164 form (journey._e164 with settings.default_country for national numbers); raises 22023 for text that is not a phone number. An update that leaves the phone unchanged keeps it as it is.';
-- The WHEN clause skips NULL phones and phones already in E.164 form: bulk inserts of E.164
-- numbers call no function.
CREATE TRIGGER contacts_phone_e164 BEFORE INSERT OR UPDATE OF phone ON journey.contacts
    FOR EACH ROW WHEN (NEW.phone IS NOT NULL AND NEW.phone !~ '^\+[1-9][0-9]{6,14}$')
    EXECUTE FUNCTION journey._on_contact_phone();
COMMENT ON TRIGGER contacts_phone_e164 ON journey.contacts IS
  'Phones in E.164 form: a phone that is not (^\+[1-9][0-9]{6,14}$) goes through journey._on_contact_phone.';
