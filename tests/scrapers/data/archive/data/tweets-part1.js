window.YTD.tweets.part1 = [
  {
    "tweet" : {
      "retweeted" : false,
      "entities" : { "hashtags" : [ ], "symbols" : [ ], "user_mentions" : [ ], "urls" : [ ] },
      "favorite_count" : "7",
      "id_str" : "950118621198921700",
      "id" : "950118621198921700",
      "created_at" : "Mon Jan 08 09:15:00 +0000 2018",
      "full_text" : "An older post, from the second part of the archive",
      "lang" : "en"
    }
  }
]
