// The open reads PostgreSQL's times as text (a UTC session) and makes the ISO strings the records keep without
// making a Date of each: the strings must be the very ones the driver's Dates gave.
import { expect } from 'chai';
import pg from 'pg';
import { utcTimeAsIso } from '../../controller/store/postgres/rows.js';

const driver = pg.types.getTypeParser(pg.types.builtins.TIMESTAMPTZ) as (text: string) => Date;

/** A time as a session with DateStyle ISO and TimeZone UTC writes it: trailing zeros of the fraction dropped. */
function pgText(ms: number, micros: number): string {
  const iso = new Date(ms).toISOString();
  const fraction = `${iso.slice(20, 23)}${String(micros).padStart(3, '0')}`.replace(/0+$/, '');
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}${fraction ? `.${fraction}` : ''}+00`;
}

describe("PostgreSQL's times read as text at open", () => {
  it("gives the driver's own ISO string for every UTC time, whole seconds and 1 to 6 digits of fraction", () => {
    let seed = 7;
    const random = (): number => {
      seed = (seed * 48271) % 2147483647;
      return seed / 2147483647;
    };
    const texts: string[] = [];
    for (let index = 0; index < 5000; index++) {
      const ms = Math.floor(random() * 4102444800000); // 1970 to 2100
      const whole = index % 5 === 0 ? ms - (ms % 1000) : ms;
      texts.push(pgText(whole, index % 3 === 0 ? 0 : Math.floor(random() * 1000)));
    }
    texts.push('2026-12-03 02:10:33+00', '2026-12-03 02:10:33.1+00', '2026-12-03 02:10:33.999999+00');
    for (const text of texts) expect(utcTimeAsIso(text), text).to.equal(driver(text).toISOString());
    expect(
      texts.some((text) => !text.includes('.')),
      'whole seconds among them',
    ).to.equal(true);
  });

  it("takes any other offset the Date's way, to the same instant the driver reads", () => {
    for (const text of ['2026-01-02 03:04:05.678+05:30', '2026-01-02 03:04:05+01', '2026-06-30 23:59:59.5-07'])
      expect(utcTimeAsIso(text), text).to.equal(driver(text).toISOString());
  });

  it('leaves what is not a time as it is, for the row reader to refuse', () => {
    expect(utcTimeAsIso('not a time')).to.equal('not a time');
  });
});
