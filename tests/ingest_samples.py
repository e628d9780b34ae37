"""Sample documents for the ingest tests, written for these tests (invented outlets, events
after public news of 2023-2024): scraped pages with the boilerplate real sites leave in."""

from __future__ import annotations

# An Indonesian news page: menu, cookie banner, "Baca juga", photo credits, ads, share
# buttons, "Pilihan Editor" and "Berita Terkait" lists, gambling spam, copyright footer.
HTML_ID = """<!DOCTYPE html>
<html lang="id-ID">
<head>
<meta charset="utf-8">
<title>Korea Selatan dan NATO perkuat kerja sama pertahanan siber - Warta Nusantara</title>
<meta property="og:title" content="Korea Selatan dan NATO perkuat kerja sama pertahanan siber">
<meta property="og:url" content="https://www.wartanusantara.example/internasional/korsel-nato-siber">
<meta property="og:site_name" content="Warta Nusantara">
<meta property="article:published_time" content="2024-07-11T09:30:00+07:00">
</head>
<body>
<nav><ul><li><a href="/">Beranda</a></li><li><a href="/nasional">Nasional</a></li>
<li><a href="/internasional">Internasional</a></li>
<li><a href="/ekonomi">Ekonomi</a></li></ul></nav>
<div class="cookie">Kami menggunakan cookie untuk meningkatkan pengalaman Anda di situs ini.
<button>Terima semua</button></div>
<div class="loading">Loading...</div>
<article>
<h1>Korea Selatan dan NATO perkuat kerja sama pertahanan siber</h1>
<p class="byline">Reporter: Dewi Lestari</p>
<p>Seoul (Warta) - Pemerintah Korea Selatan dan Pakta Pertahanan Atlantik Utara (NATO)
sepakat memperluas kerja sama di bidang pertahanan siber, kata juru bicara Kementerian
Pertahanan di Seoul pada Kamis.</p>
<p>Kesepakatan itu merupakan bagian dari Program Kemitraan yang Disesuaikan Secara Individual
yang disetujui di Vilnius, dan mencakup latihan bersama serta pertukaran informasi tentang
ancaman siber dari Korea Utara. (Foto: Dok. Kementerian Pertahanan)</p>
<p>Baca juga: Menteri Pertahanan bertemu Sekretaris Jenderal NATO di Brussel</p>
<p>ADVERTISEMENT</p>
<p>SCROLL TO CONTINUE WITH CONTENT</p>
<p>Menurut juru bicara tersebut, tim tanggap insiden kedua pihak akan berlatih bersama dalam
latihan Locked Shields di Tallinn tahun depan, sementara para ahli dari Seoul akan bekerja
di pusat keunggulan siber NATO.</p>
<p>Pejabat itu menambahkan bahwa Korea Selatan juga tertarik pada kerja sama di bidang
teknologi antariksa dan kecerdasan buatan, dua bidang yang disebut dalam program kemitraan.</p>
<p>Bagikan: Facebook Twitter WhatsApp</p>
<p>Situs slot gacor terpercaya, daftar sekarang dan dapatkan bonus di www.judi.example</p>
<p>Pilihan Editor</p>
<p>Harga cabai naik menjelang Lebaran</p>
<p>Timnas U-23 lolos ke semifinal Piala Asia</p>
<p>Lima tips merawat sepeda motor di musim hujan</p>
</article>
<aside><h3>Berita Terkait</h3><ul><li><a href="/a">Presiden resmikan bendungan baru</a></li>
<li><a href="/b">Banjir rendam ratusan rumah di Bekasi</a></li></ul></aside>
<footer><p>© 2024 Warta Nusantara. Hak cipta dilindungi undang-undang.</p>
<p>Tentang Kami | Redaksi | Pedoman Media Siber | Kontak</p></footer>
</body>
</html>
"""

# Sentences of HTML_ID that the report must keep.
HTML_ID_KEPT = (
    "sepakat memperluas kerja sama di bidang pertahanan siber",
    "latihan Locked Shields di Tallinn",
    "teknologi antariksa dan kecerdasan buatan",
)
# Boilerplate of HTML_ID that must be gone from the report (the original keeps it).
HTML_ID_GONE = (
    "Kami menggunakan cookie",
    "Loading...",
    "Baca juga",
    "Foto:",
    "ADVERTISEMENT",
    "Pilihan Editor",
    "Harga cabai",
    "slot gacor",
    "Bagikan",
    "Hak cipta",
    "Berita Terkait",
)

TEXT_EN = """Launch reported off the east coast

Coastal observers reported that a ballistic missile was launched towards the East Sea early on
Wednesday morning, according to a statement from the joint chiefs of staff.

The missile flew for about 1,000 kilometres before it fell into the sea outside the exclusive
economic zone. Officials said that the launch was the third of the month.
Read more: Earlier launches this year
Photo: Coastal Guard handout
"""

TEXT_ID = """Kapal latihan angkatan laut berlabuh di Busan

Sebuah kapal latihan angkatan laut Indonesia berlabuh di pelabuhan Busan pada hari Senin untuk
kunjungan persahabatan selama tiga hari, kata pejabat angkatan laut Korea Selatan.

Para taruna akan mengikuti latihan bersama dan mengunjungi galangan kapal di kota itu.
"""

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0">
<channel>
<title>Berita Pertahanan Contoh</title>
<link>https://pertahanan.example/</link>
<description>Kabar pertahanan terbaru</description>
<language>id</language>
<item>
<title>Korea Utara kembali meluncurkan rudal balistik</title>
<link>https://pertahanan.example/berita/rudal-1</link>
<pubDate>Wed, 12 Jul 2023 01:24:00 GMT</pubDate>
<description><![CDATA[<p>Korea Utara meluncurkan sebuah rudal balistik jarak jauh ke arah Laut
Timur pada hari Rabu, kata kepala staf gabungan Korea Selatan.</p>
<p>Baca juga: Jepang protes peluncuran rudal</p>]]></description>
</item>
<item>
<title>Menhan bertemu mitra dari Australia</title>
<link>https://pertahanan.example/berita/menhan-australia</link>
<pubDate>Thu, 13 Jul 2023 08:00:00 GMT</pubDate>
<description>Menteri pertahanan membahas latihan bersama dengan mitranya dari Australia di Jakarta
pada hari Kamis, dan keduanya sepakat untuk memperluas patroli maritim.</description>
</item>
<item>
<title>Latihan gabungan digelar di Natuna</title>
<link>https://pertahanan.example/berita/latihan-natuna</link>
<pubDate>Fri, 14 Jul 2023 03:00:00 GMT</pubDate>
<description>Ribuan prajurit mengikuti latihan gabungan di Kepulauan Natuna yang akan berlangsung
selama dua minggu, kata juru bicara tentara.</description>
</item>
</channel>
</rss>
"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">
<title>Alliance Newsroom (sample)</title>
<link href="https://newsroom.example/"/>
<id>urn:uuid:0b7f5a3e-8d1c-4d9e-9a57-1f2f3b4c5d6e</id>
<updated>2024-07-11T12:00:00Z</updated>
<entry>
<title>Partners agree on cyber defence cooperation</title>
<link href="https://newsroom.example/news/cyber-cooperation"/>
<id>urn:uuid:1c2d3e4f-0000-4000-8000-000000000001</id>
<published>2024-07-10T09:00:00Z</published>
<updated>2024-07-10T09:00:00Z</updated>
<content type="html">&lt;p&gt;Allied and partner ministers agreed on Wednesday to deepen their
cooperation on cyber defence and to hold a joint exercise next year.&lt;/p&gt;
&lt;p&gt;Share on Facebook&lt;/p&gt;</content>
</entry>
<entry>
<title>Summit statement on emerging technologies</title>
<link href="https://newsroom.example/news/emerging-tech"/>
<id>urn:uuid:1c2d3e4f-0000-4000-8000-000000000002</id>
<updated>2024-07-11T10:30:00Z</updated>
<summary>The statement names artificial intelligence, space and quantum technologies as areas
where the allies and their partners will work together.</summary>
</entry>
</feed>
"""

# Plain-text field reports: short "X: ..." lines are their content, not a site's bylines and
# menus, and must come through whole.
SALUTE_EN = """SALUTE REPORT 0412
S: Two companies of infantry, about 200 personnel
A: Moving south along Route 5
L: 38.12N 127.20E
U: Green uniforms, no unit insignia seen
T: 250630ZNOV26
E: Four BMP-2, two ZU-23-2 on trucks
Remarks: Observed from OP North for 20 minutes. Reporter: Sgt Kim
Topics: armour, air defence
Photo: attached, IMG_0042
Home | Route 5 | Checkpoint 3
"""

LAPORAN_ID = """LAPORAN KHUSUS 17/XI/2026
Laporan: Pergerakan kapal tak dikenal di perairan Natuna
Waktu: 24 November 2026 pukul 21.40 WIB
Tempat: 3 NM utara Pulau Laut
Kekuatan: Dua kapal patroli, satu kapal logistik
Kegiatan: Berlayar ke arah barat daya dengan kecepatan 12 knot
Sumber: Pos pengamatan TNI AL
Topik: maritim
Pelapor: Lettu Laut (P) Andi
"""
