#!/usr/bin/env bash
# Write a small, fixed sample of a Synthea CSV export into a folder:
# patients.csv (20 patients), encounters.csv (4 to 6 per patient) and
# conditions.csv (2 to 4 per patient). The header lines are copied from a real
# Synthea CSV export. Every value is computed from row numbers, so two runs
# write identical files. The people are made up, and every SSN starts with
# 999, an area number that is never issued as a Social Security number.
#
# Like Synthea, the writer never quotes a field. Synthea replaces commas and
# line breaks inside a value with spaces, which is why its birthplaces read
# "Omaha  Nebraska  US", and clean_field below does the same.
set -euo pipefail

if [ $# -ne 1 ]; then
	echo "usage: demo/sample.sh OUTPUT_DIR" >&2
	exit 2
fi
out_dir=$1
mkdir -p "$out_dir"

# The C locale keeps the decimal point a "." in awk's printf.
LC_ALL=C awk -v out_dir="$out_dir" '
function clean_field(value)
{
	gsub(/\r\n|\r|\n|,/, " ", value)
	sub(/^ +/, "", value)
	sub(/ +$/, "", value)
	return value
}

# A UUID-shaped id: a scrambled row number, the kind (1 patient, 2 encounter,
# 3 organization, 4 provider, 5 payer) and the row number, in hex.
function make_id(kind, n)
{
	return sprintf("%08x-%04x-4000-8000-%012x", (n * 2654435761) % 4294967296, kind, n)
}

function date_string(year, month, day)
{
	return sprintf("%04d-%02d-%02d", year, month, day)
}

BEGIN {
	patients_file = out_dir "/patients.csv"
	encounters_file = out_dir "/encounters.csv"
	conditions_file = out_dir "/conditions.csv"

	print "Id,BIRTHDATE,DEATHDATE,SSN,DRIVERS,PASSPORT,PREFIX,FIRST,LAST,SUFFIX,MAIDEN,MARITAL,RACE,ETHNICITY,GENDER,BIRTHPLACE,ADDRESS,CITY,STATE,COUNTY,FIPS,ZIP,LAT,LON,HEALTHCARE_EXPENSES,HEALTHCARE_COVERAGE,INCOME" > patients_file
	print "Id,START,STOP,PATIENT,ORGANIZATION,PROVIDER,PAYER,ENCOUNTERCLASS,CODE,DESCRIPTION,BASE_ENCOUNTER_COST,TOTAL_CLAIM_COST,PAYER_COVERAGE,REASONCODE,REASONDESCRIPTION" > encounters_file
	print "START,STOP,PATIENT,ENCOUNTER,CODE,DESCRIPTION" > conditions_file

	split("Alice Bruno Clara Dmitri Elena Farid Grace Hector Ines Jonas", first_names, " ")
	split("Stone Keller Novak Rivera Lindqvist Okafor Brandt Moreau Tanaka Hale", last_names, " ")
	split("Maple Prairie Willow Cedar Harvest Bluestem Platte Sandhill", street_names, " ")
	split("Street Avenue Road Lane Court", street_kinds, " ")
	split("white black asian native hawaiian other", races, " ")

	# City|county|FIPS|ZIP|latitude|longitude, approximate city centres.
	cities[1] = "Omaha|Douglas County|31055|68102|41.2565|-95.9345"
	cities[2] = "Lincoln|Lancaster County|31109|68508|40.8136|-96.7026"
	cities[3] = "Bellevue|Sarpy County|31153|68005|41.1544|-95.9146"
	cities[4] = "Grand Island|Hall County|31079|68801|40.9264|-98.3420"
	cities[5] = "Kearney|Buffalo County|31019|68847|40.6993|-99.0832"
	cities[6] = "Fremont|Dodge County|31053|68025|41.4333|-96.4981"
	cities[7] = "Hastings|Adams County|31001|68901|40.5863|-98.3887"
	cities[8] = "North Platte|Lincoln County|31111|69101|41.1239|-100.7654"

	# ENCOUNTERCLASS|CODE|DESCRIPTION (SNOMED CT codes, as Synthea uses them).
	encounter_kinds[1] = "wellness|162673000|General examination of patient (procedure)"
	encounter_kinds[2] = "ambulatory|185345009|Encounter for symptom"
	encounter_kinds[3] = "outpatient|185347001|Encounter for problem (procedure)"
	encounter_kinds[4] = "urgentcare|702927004|Urgent care clinic (environment)"
	encounter_kinds[5] = "emergency|50849002|Emergency room admission (procedure)"
	encounter_kinds[6] = "ambulatory|185349003|Encounter for check up (procedure)"

	# CODE|DESCRIPTION of conditions, also used as encounter reasons.
	condition_kinds[1] = "444814009|Viral sinusitis (disorder)"
	condition_kinds[2] = "195662009|Acute viral pharyngitis (disorder)"
	condition_kinds[3] = "10509002|Acute bronchitis (disorder)"
	condition_kinds[4] = "59621000|Essential hypertension (disorder)"
	condition_kinds[5] = "15777000|Prediabetes"
	condition_kinds[6] = "314529007|Medication review due (situation)"
	condition_kinds[7] = "73595000|Stress (finding)"

	encounter_number = 0
	for (p = 1; p <= 20; p++) {
		write_patient(p)
	}
}

function write_patient(p,    id, female, birth_year, birth, death, death_year,
	ssn, drivers, passport, prefix, first, last, maiden, marital, city,
	address, lat, lon, fips, zip, encounters, conditions, e, first_year,
	encounter_ids, encounter_dates, k, j)
{
	id = make_id(1, p)
	female = p % 2
	# Born 1940 to 2017, so that the yearly encounters below end by 2023.
	birth_year = 1940 + (p * 37) % 78
	birth = date_string(birth_year, (p * 5) % 12 + 1, (p * 11) % 28 + 1)

	# Patients whose number is a multiple of 7 and who were born before 1975
	# died 40 to 44 years after birth.
	death = ""
	death_year = 0
	if (p % 7 == 0 && birth_year < 1975) {
		death_year = birth_year + 40 + p % 5
		death = date_string(death_year, (p * 3) % 12 + 1, (p * 11) % 28 + 1)
	}

	ssn = sprintf("999-%02d-%04d", 10 + (p * 37) % 90, 1000 + p * 311)
	first = first_names[(p - 1) % 10 + 1] (10 + (p * 53) % 890)
	last = last_names[(p * 3) % 10 + 1] (10 + (p * 29) % 890)

	# Synthea leaves the adult-only fields empty for children.
	drivers = ""
	passport = ""
	prefix = ""
	maiden = ""
	marital = ""
	if (birth_year <= 2006) {
		drivers = sprintf("S999%05d", (p * 7919) % 100000)
		if (p % 3 != 0)
			passport = sprintf("X%08dX", (p * 104729) % 100000000)
		marital = (p % 4 == 1) ? "S" : "M"
		if (!female)
			prefix = "Mr."
		else if (marital == "M")
			prefix = "Mrs."
		else
			prefix = "Ms."
		if (female && marital == "M")
			maiden = last_names[(p * 7) % 10 + 1] (10 + (p * 17) % 890)
	}

	split(cities[(p - 1) % 8 + 1], city, "|")
	address = (100 + (p * 47) % 900) " " street_names[p % 8 + 1] " " street_kinds[p % 5 + 1]
	if (p % 4 == 0)
		address = address " Apt " (p % 9 + 1)
	# Up to 0.04 degrees (about 4 km) from the city centre.
	lat = city[5] + ((p * 7919) % 10007) / 10007 * 0.08 - 0.04
	lon = city[6] + ((p * 6151) % 10009) / 10009 * 0.08 - 0.04
	fips = city[3]
	zip = city[4]
	# Real Synthea exports contain rows with an empty FIPS and ZIP 00000.
	if (p == 11) {
		fips = ""
		zip = "00000"
	}

	print id "," birth "," death "," ssn "," drivers "," passport "," prefix "," \
		first "," last ",," maiden "," marital "," races[p % 6 + 1] "," \
		(p % 5 == 0 ? "hispanic" : "nonhispanic") "," (female ? "F" : "M") "," \
		clean_field(city[1] ", Nebraska, US") "," clean_field(address) "," \
		city[1] ",Nebraska," city[2] "," fips "," zip "," \
		sprintf("%.12f,%.12f,%.2f,%.2f,%d", lat, lon, 1500 + p * 4321.17,
			(p % 3) * 9876.54, 20000 + (p * 7331) % 150000) >> patients_file

	# Yearly encounters, all after birth and before death.
	encounters = 4 + p % 3
	first_year = death_year ? death_year - encounters : birth_year + 1
	if (!death_year && first_year < 2015)
		first_year = 2015
	for (e = 1; e <= encounters; e++) {
		encounter_number++
		encounter_ids[e] = make_id(2, encounter_number)
		encounter_dates[e] = date_string(first_year + e - 1, (p + e * 5) % 12 + 1, (p * 3 + e) % 28 + 1)
		write_encounter(p, id, e, encounter_ids[e], encounter_dates[e])
	}

	# Conditions, each diagnosed at an encounter of this patient. Every
	# second one has resolved.
	conditions = 2 + (p + 1) % 3
	for (j = 1; j <= conditions; j++) {
		e = (j * 2 - 1) % encounters + 1
		split(condition_kinds[(p + j * 2) % 7 + 1], k, "|")
		print encounter_dates[e] "," (j % 2 == 0 ? encounter_dates[e] : "") "," id "," \
			encounter_ids[e] "," k[1] "," clean_field(k[2]) >> conditions_file
	}
}

function write_encounter(p, patient_id, e, encounter_id, day,    kind, reason,
	hour, minute, base_cost, total_cost, coverage, reason_code, reason_text)
{
	split(encounter_kinds[(p + e) % 6 + 1], kind, "|")
	hour = (p * 5 + e * 3) % 24
	minute = (p * 13 + e * 7) % 45

	reason_code = ""
	reason_text = ""
	if (kind[1] != "wellness" && (p + e) % 2 == 0) {
		split(condition_kinds[(p + e) % 3 + 1], reason, "|")
		reason_code = reason[1]
		reason_text = clean_field(reason[2])
	}

	base_cost = 85.55 + (p * e) % 40
	total_cost = base_cost + ((p + e) % 4) * 112.30
	coverage = ((p + e) % 3 == 0) ? 0 : total_cost * 0.8

	print encounter_id "," sprintf("%sT%02d:%02d:%02dZ,%sT%02d:%02d:%02dZ", day, hour,
		minute, (p * 7) % 60, day, hour, minute + 15, (p * 7) % 60) "," patient_id "," \
		make_id(3, p % 3 + 1) "," make_id(4, p % 5 + 1) "," make_id(5, p % 2 + 1) "," \
		kind[1] "," kind[2] "," clean_field(kind[3]) "," \
		sprintf("%.2f,%.2f,%.2f", base_cost, total_cost, coverage) "," \
		reason_code "," reason_text >> encounters_file
}
'

echo "Wrote a 20-patient Synthea-shaped sample to $out_dir"
